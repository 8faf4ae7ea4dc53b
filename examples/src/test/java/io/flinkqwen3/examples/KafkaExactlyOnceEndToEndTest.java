package io.flinkqwen3.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.flink.CompletionRecord;
import io.flinkqwen3.flink.DeadLetter;
import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Inference;
import io.flinkqwen3.flink.Qwen3Kafka;
import io.flinkqwen3.flink.Qwen3Options;
import io.flinkqwen3.flink.RecordCodec;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.junit.jupiter.api.Test;

/**
 * Avro prompts in a real (in-process, KRaft) Kafka broker -> Flink MiniCluster -> Qwen3 -> the
 * transactional Kafka sink, with a failure injected mid-stream after a checkpoint: read back with
 * read_committed, every prompt id has exactly one completion, and malformed records are in the
 * dead-letter topic with their reasons.
 */
class KafkaExactlyOnceEndToEndTest {
    static final Path MODEL = Path.of("../../shared/fixtures/qwen3-moe-tiny").toAbsolutePath().normalize();
    static final int PROMPTS = 40;

    /** Fails the job once, on the first completion after a checkpoint has completed. */
    static final class FailOnceAfterCheckpoint implements MapFunction<CompletionRecord, CompletionRecord>, CheckpointListener {
        static final AtomicBoolean CHECKPOINTED = new AtomicBoolean();
        static final AtomicBoolean FAILED = new AtomicBoolean();
        static final AtomicInteger SEEN = new AtomicInteger();

        @Override
        public CompletionRecord map(CompletionRecord c) {
            if (SEEN.incrementAndGet() > 3 && CHECKPOINTED.get() && FAILED.compareAndSet(false, true)) {
                throw new IllegalStateException("injected failure after " + SEEN.get() + " completions");
            }
            return c;
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) {
            CHECKPOINTED.set(true);
        }
    }

    @Test
    void everyPromptIsAnsweredExactlyOnceAcrossAFailure() throws Exception {
        try (var kafka = EmbeddedKafka.start()) {
            kafka.createTopics(2, "prompts", "completions", "dead-letters");
            List<byte[][]> records = new ArrayList<>();
            for (int i = 0; i < PROMPTS; i++) {
                var p = PromptRecord.of("id-" + i, "Question " + i + ": what comes next?").withSlaMs(60_000);
                p.maxTokens = 48;
                records.add(new byte[][] {p.id.getBytes(StandardCharsets.UTF_8), RecordCodec.encodePromptAvro(p)});
            }
            records.add(new byte[][] {"bad-bytes".getBytes(StandardCharsets.UTF_8), new byte[] {(byte) 0xFF, 0x00, 0x13}});
            records.add(new byte[][] {"bad-json".getBytes(StandardCharsets.UTF_8), "{\"id\":\"bad-json\",\"sla_ms\":-5,\"prompt\":\"x\"}".getBytes(StandardCharsets.UTF_8)});
            kafka.produce("prompts", records);

            var cluster = new Configuration();
            cluster.set(TaskManagerOptions.NUM_TASK_SLOTS, 2);
            cluster.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
            cluster.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 3);
            cluster.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(200));
            var env = StreamExecutionEnvironment.createLocalEnvironment(2, cluster);
            env.enableCheckpointing(200);

            var source = Qwen3Kafka.promptSource(kafka.bootstrapServers(), "prompts", "e2e").setBounded(OffsetsInitializer.latest());
            var completions = Qwen3Inference.builder()
                    .model(MODEL.toString())
                    .option(Qwen3Options.THREADS, 2)
                    .option(Qwen3Options.MAX_IN_FLIGHT, 4)
                    .build()
                    .apply(env.fromSource(source.build(), WatermarkStrategy.noWatermarks(), "prompts"));
            completions.map(new FailOnceAfterCheckpoint())
                    .sinkTo(Qwen3Kafka.completionSink(kafka.bootstrapServers(), "completions", "e2e-completions", Qwen3Kafka.Format.AVRO));
            completions.getSideOutput(Qwen3Inference.DEAD_LETTERS)
                    .sinkTo(Qwen3Kafka.deadLetterSink(kafka.bootstrapServers(), "dead-letters", "e2e-dead", Qwen3Kafka.Format.AVRO));
            env.execute("e2e exactly once");

            assertTrue(FailOnceAfterCheckpoint.FAILED.get(), "the failure was injected, so the job restored from a checkpoint");
            Map<String, Integer> counts = new HashMap<>();
            for (var r : kafka.readCommitted("completions", PROMPTS, Duration.ofSeconds(2), Duration.ofSeconds(60), r -> {})) {
                CompletionRecord c = RecordCodec.decodeCompletionAvro(r.value());
                counts.merge(c.id, 1, Integer::sum);
                assertTrue(c.answerTokens + c.thinkingTokens > 0, c.toString());
            }
            assertEquals(PROMPTS, counts.size(), "ids answered: " + counts.keySet());
            counts.forEach((id, n) -> assertEquals(1, n, id + " has " + n + " committed completions"));

            Map<String, String> reasons = new HashMap<>();
            for (var r : kafka.readCommitted("dead-letters", 2, Duration.ofSeconds(1), Duration.ofSeconds(30), r -> {})) {
                DeadLetter d = RecordCodec.decodeDeadLetterAvro(r.value());
                reasons.merge(d.id, d.reason, (a, b) -> a + " | " + b);
            }
            assertEquals(2, reasons.size(), reasons.toString());
            assertTrue(reasons.get("bad-bytes").startsWith("invalid Avro prompt"), reasons.get("bad-bytes"));
            assertTrue(reasons.get("bad-json").startsWith("negative sla_ms"), reasons.get("bad-json"));
        }
    }
}
