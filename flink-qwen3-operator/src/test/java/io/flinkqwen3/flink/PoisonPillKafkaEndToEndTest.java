package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.Fixtures;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Kafka (in-process broker) -> Flink MiniCluster -> Qwen3 -> transactional Kafka sinks, fed 1,000
 * good records mixed with the whole poison-pill corpus, with failures injected mid-stream. The
 * restart strategy allows exactly the injected failures, and a failed checkpoint counts as a
 * failure: a single record failing the job or a checkpoint would make it FAILED. At the end, read
 * with read_committed: every good id has exactly one completion, every bad record is in the
 * dead-letter topic once with its reason, and the job is still RUNNING.
 */
class PoisonPillKafkaEndToEndTest {
    /** One task manager with two slots: the two subtasks share its engine. The cluster outlives the job, so its result can be read. */
    @RegisterExtension
    static final MiniClusterExtension CLUSTER = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(2).build());

    static final int GOOD = 1000;
    static final int FAILURES = 3;

    /** Fails its task FAILURES times, spread over the run, each time after a checkpoint has completed since the last restart. */
    static final class InjectFailures implements MapFunction<CompletionRecord, CompletionRecord>, CheckpointListener {
        static final AtomicInteger INJECTED = new AtomicInteger();
        static final AtomicInteger SEEN = new AtomicInteger();
        private transient boolean checkpointed;

        @Override
        public CompletionRecord map(CompletionRecord c) {
            int seen = SEEN.incrementAndGet();
            int injected = INJECTED.get();
            if (checkpointed && injected < FAILURES && seen > (injected + 1) * GOOD / (FAILURES + 1)
                    && INJECTED.compareAndSet(injected, injected + 1)) {
                throw new IllegalStateException("injected failure " + (injected + 1) + " after " + seen + " completions");
            }
            return c;
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) {
            checkpointed = true;
        }
    }

    @Test
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void poisonPillsAreDeadLettersAndGoodRecordsAreAnsweredExactlyOnceAcrossFailures() throws Exception {
        List<PoisonPills.Pill> pills = PoisonPills.all();
        List<PoisonPills.Good> extremes = PoisonPills.extremes();
        Set<String> goodIds = new HashSet<>();
        List<byte[][]> records = new ArrayList<>();
        int plain = GOOD - extremes.size();
        int spacing = plain / (pills.size() + extremes.size() + 1);
        for (int i = 0, bad = 0, extreme = 0; i < plain; i++) {
            var p = PromptRecord.of("good-" + i, "Question " + i + ": what comes next?");
            byte[] value = i % 2 == 0 ? RecordCodec.encodePromptAvro(p) : RecordCodec.toJson(p);
            records.add(new byte[][] {bytes(p.id), value});
            goodIds.add(p.id);
            if (i % spacing == 0 && bad < pills.size()) {
                var pill = pills.get(bad++);
                records.add(new byte[][] {bytes(pill.id()), pill.value()});
            } else if (i % spacing == spacing / 2 && extreme < extremes.size()) {
                var good = extremes.get(extreme++);
                records.add(new byte[][] {bytes(good.id()), good.value()});
                goodIds.add(good.id());
            }
        }
        records.add(new byte[][] {bytes("tombstone"), null});
        Map<String, String> expectedReason = new TreeMap<>();
        pills.forEach(p -> expectedReason.put(p.id(), p.reason()));
        expectedReason.put("tombstone", "empty record");
        assertEquals(GOOD, goodIds.size(), "every extreme record was mixed in");
        assertEquals(GOOD + expectedReason.size(), records.size(), "every pill was mixed in");

        long started = System.nanoTime();
        try (var kafka = InProcessKafka.start()) {
            kafka.createTopics(2, "prompts", "completions", "dead-letters");
            kafka.produce("prompts", records);

            var config = new Configuration();
            config.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
            config.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, FAILURES);
            config.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(100));
            config.set(CheckpointingOptions.TOLERABLE_FAILURE_NUMBER, 0);
            var env = StreamExecutionEnvironment.getExecutionEnvironment(config);
            env.setParallelism(2);
            env.enableCheckpointing(300);

            var source = Qwen3Kafka.promptSource(kafka.bootstrapServers(), "prompts", "poison-e2e"); // unbounded
            var completions = Qwen3Inference.builder()
                    .model(Fixtures.MOE.toString())
                    .threads(2)
                    .maxContext(256)
                    .defaultMaxTokens(2)
                    .maxInFlight(16)
                    .build()
                    .apply(env.fromSource(source.build(), WatermarkStrategy.noWatermarks(), "prompts"));
            completions.map(new InjectFailures())
                    .sinkTo(Qwen3Kafka.completionSink(kafka.bootstrapServers(), "completions", "poison-e2e-c", Qwen3Kafka.Format.AVRO));
            completions.getSideOutput(Qwen3Inference.DEAD_LETTERS)
                    .sinkTo(Qwen3Kafka.deadLetterSink(kafka.bootstrapServers(), "dead-letters", "poison-e2e-d", Qwen3Kafka.Format.JSON));
            JobClient job = env.executeAsync("poison pills e2e");
            try {
                Map<String, Integer> answered = new HashMap<>();
                var completed = kafka.readCommitted("completions",
                        all -> ids(all, true).keySet().containsAll(goodIds) || terminated(job), Duration.ofSeconds(2), Duration.ofMinutes(4));
                if (terminated(job)) {
                    job.getJobExecutionResult().get(); // throws with the cause
                    throw new AssertionError("the job ended: " + job.getJobStatus().get());
                }
                ids(completed, true).forEach(answered::put);
                Map<String, List<String>> reasons = new TreeMap<>();
                for (var r : kafka.readCommitted("dead-letters", all -> all.size() >= expectedReason.size(), Duration.ofSeconds(1),
                        Duration.ofSeconds(30))) {
                    DeadLetter d = RecordCodec.JSON.readValue(r.value(), DeadLetter.class);
                    reasons.computeIfAbsent(d.id, k -> new ArrayList<>()).add(d.reason);
                }
                JobStatus status = job.getJobStatus().get();

                assertEquals(FAILURES, InjectFailures.INJECTED.get(), "failures injected");
                assertEquals(goodIds, answered.keySet(), "every good id has a committed completion, and nothing else has");
                answered.forEach((id, n) -> assertEquals(1, n, id + " has " + n + " committed completions"));
                assertEquals(expectedReason.keySet(), reasons.keySet(), "every bad record is a dead letter");
                reasons.forEach((id, why) -> {
                    assertEquals(1, why.size(), id + " has " + why.size() + " dead letters: " + why);
                    assertTrue(why.get(0).contains(expectedReason.get(id)), id + ": " + why.get(0));
                });
                assertEquals(JobStatus.RUNNING, status, "no record failed the job or a checkpoint");
            } finally {
                if (!terminated(job)) {
                    job.cancel().get();
                }
            }
        }
        System.out.printf("poison pill e2e: %d good + %d bad records, %d failures, %.1f s%n", GOOD, expectedReason.size(), FAILURES,
                (System.nanoTime() - started) / 1e9);
    }

    private static boolean terminated(JobClient job) {
        try {
            return job.getJobStatus().get().isTerminalState();
        } catch (Exception e) {
            return true; // the cluster is gone with the job
        }
    }

    /** Committed completions per id (checking each has generated something, or classified: a label and no text). */
    private static Map<String, Integer> ids(List<ConsumerRecord<byte[], byte[]>> records, boolean check) {
        Map<String, Integer> counts = new HashMap<>();
        for (var r : records) {
            CompletionRecord c = RecordCodec.decodeCompletionAvro(r.value());
            if (check) {
                assertTrue(c.label != null ? c.label.equals(c.answer) : c.answerTokens + c.thinkingTokens > 0, c.toString());
            }
            counts.merge(c.id, 1, Integer::sum);
        }
        return counts;
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
