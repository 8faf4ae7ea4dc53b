package io.flinkqwen3.examples;

import io.flinkqwen3.flink.CompletionRecord;
import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Kafka;
import io.flinkqwen3.flink.Qwen3Options;
import io.flinkqwen3.flink.RecordCodec;
import io.flinkqwen3.flink.TaskManagerEngines;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * End-to-end throughput, Kafka in to Kafka out: N prompts (non-thinking, M generated tokens each)
 * through one task manager with S slots and the exactly-once sink, read back with read_committed.
 * Prints records/s and generated tokens/s, measured from the moment the task manager's engine is
 * ready (model loaded) to the last committed completion, and the total wall time as well.
 *
 * <pre>examples/bin/throughput --model DIR [--quantize q8_0] [--prompts 64] [--max-tokens 64] [--slots 2]
 *     [--prompts-file FILE] [--system-prompt TEXT]</pre>
 *
 * With {@code --prompts-file ../shared/tools/flink-remote/prompts.txt --system-prompt "You are a helpful
 * assistant."} it runs the workload of the Flink {@code ML_PREDICT} -> llama-server baseline (one prompt
 * per line, the system prompt Flink's openai provider sends with each).
 */
public final class ThroughputBenchmark {
    private ThroughputBenchmark() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> flags = KafkaInferenceJob.parse(args);
        String model = KafkaInferenceJob.required(flags, "--model");
        int prompts = Integer.parseInt(flags.getOrDefault("--prompts", "64"));
        int maxTokens = Integer.parseInt(flags.getOrDefault("--max-tokens", "64"));
        int slots = Integer.parseInt(flags.getOrDefault("--slots", "2"));
        try (var kafka = EmbeddedKafka.start()) {
            var topics = new KafkaInferenceJob.Topics(kafka.bootstrapServers(), "prompts", "completions", "dead-letters", "bench");
            kafka.createTopics(slots, topics.input(), topics.output(), topics.deadLetters());
            List<String> texts = flags.containsKey("--prompts-file")
                    ? Files.readAllLines(Path.of(flags.get("--prompts-file"))).stream().filter(l -> !l.isBlank()).toList()
                    : Arrays.stream(Quickstart.QUESTIONS).toList();
            List<byte[][]> records = new ArrayList<>();
            for (int i = 0; i < prompts; i++) {
                String text = texts.get(i % texts.size()) + (flags.containsKey("--prompts-file") ? "" : " (request " + i + ")");
                var p = PromptRecord.of("p" + i, text).withSlaMs(600_000);
                p.systemPrompt = flags.get("--system-prompt");
                p.enableThinking = false;
                p.maxTokens = maxTokens;
                records.add(new byte[][] {p.id.getBytes(StandardCharsets.UTF_8), RecordCodec.encodePromptAvro(p)});
            }
            kafka.produce(topics.input(), records);

            var cluster = new Configuration();
            cluster.set(TaskManagerOptions.NUM_TASK_SLOTS, slots);
            var env = StreamExecutionEnvironment.createLocalEnvironment(slots, cluster);
            env.enableCheckpointing(1000);
            var options = new Configuration();
            options.set(Qwen3Options.MODEL, model);
            options.set(Qwen3Options.MAX_IN_FLIGHT, Integer.parseInt(flags.getOrDefault("--max-in-flight", "32")));
            options.set(Qwen3Options.MAX_BATCH_SEQUENCES, Integer.parseInt(flags.getOrDefault("--max-batch", "64")));
            if (flags.containsKey("--quantize")) {
                options.set(Qwen3Options.QUANTIZE, flags.get("--quantize"));
            }
            if (flags.containsKey("--threads")) {
                options.set(Qwen3Options.THREADS, Integer.parseInt(flags.get("--threads")));
            }
            KafkaInferenceJob.addPipeline(env, topics, options, Qwen3Kafka.Format.AVRO, true);
            long submitted = System.nanoTime();
            var job = env.executeAsync("flink-qwen3 throughput");
            while (TaskManagerEngines.openEngines() == 0 && !job.getJobStatus().get().isTerminalState()) {
                Thread.sleep(10);
            }
            long ready = System.nanoTime();
            System.err.printf("throughput: engine ready after %.1f s; %d prompts x %d tokens%n", (ready - submitted) / 1e9, prompts, maxTokens);
            long[] tokens = {0};
            long[] last = {ready};
            var read = kafka.readCommitted(topics.output(), prompts, Duration.ofSeconds(1), Duration.ofMinutes(60), r -> {
                CompletionRecord c = RecordCodec.decodeCompletionAvro(r.value());
                tokens[0] += c.thinkingTokens + c.answerTokens;
                last[0] = System.nanoTime();
            });
            job.getJobExecutionResult().get();
            double seconds = (last[0] - ready) / 1e9, total = (last[0] - submitted) / 1e9;
            System.out.printf("records: %d, generated tokens: %d%n", read.size(), tokens[0]);
            System.out.printf("steady state (engine ready -> last committed completion): %.1f s, %.2f records/s, %.1f tokens/s%n",
                    seconds, read.size() / seconds, tokens[0] / seconds);
            System.out.printf("total wall time (incl. job start and model load): %.1f s, %.2f records/s%n", total, read.size() / total);
        }
    }
}
