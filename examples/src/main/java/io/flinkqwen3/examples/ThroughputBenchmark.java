package io.flinkqwen3.examples;

import io.flinkqwen3.cli.Commands;
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
import java.util.concurrent.Callable;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * End-to-end throughput, Kafka in to Kafka out: N prompts (non-thinking, M generated tokens each)
 * through one task manager with S slots and the exactly-once sink, read back with read_committed.
 * Prints records/s and generated tokens/s, measured from the moment the task manager's engine is
 * ready (model loaded) to the last committed completion, and the total wall time as well.
 *
 * With {@code --prompts-file ../shared/tools/flink-remote/prompts.txt --system-prompt "You are a helpful
 * assistant."} it runs the workload of the Flink {@code ML_PREDICT} -> llama-server baseline (one prompt
 * per line, the system prompt Flink's openai provider sends with each).
 */
@Command(name = "throughput", mixinStandardHelpOptions = true, versionProvider = Commands.Version.class, sortOptions = false,
        description = "End-to-end throughput: N prompts through embedded Kafka -> Flink (one task manager) -> Kafka, exactly once.")
public final class ThroughputBenchmark implements Callable<Integer> {
    @Spec
    CommandSpec spec;
    @Option(names = "--model", required = true, paramLabel = "LOCATION", description = "Model directory, .gguf file or Hugging Face repo id.")
    String model;
    @Option(names = "--quantize", paramLabel = "q8_0|q4_0", description = "Convert BF16/F16/F32 weights at load time.")
    String quantize;
    @Option(names = "--prompts", paramLabel = "N", defaultValue = "64", description = "Prompts (default: ${DEFAULT-VALUE}).")
    int prompts;
    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "64", description = "Generated tokens per prompt (default: ${DEFAULT-VALUE}).")
    int maxTokens;
    @Option(names = "--slots", paramLabel = "N", defaultValue = "2", description = "Task slots and parallelism (default: ${DEFAULT-VALUE}).")
    int slots;
    @Option(names = "--max-in-flight", paramLabel = "N", defaultValue = "32", description = "Requests in flight per subtask (default: ${DEFAULT-VALUE}).")
    int maxInFlight;
    @Option(names = "--max-batch", paramLabel = "N", defaultValue = "64", description = "Sequences per engine step (default: ${DEFAULT-VALUE}).")
    int maxBatch;
    @Option(names = "--threads", paramLabel = "N", description = "Kernel threads of the engine (default: the available processors).")
    Integer threads;
    @Option(names = "--prompts-file", paramLabel = "FILE", description = "Prompts, one per line (default: the quickstart's questions).")
    Path promptsFile;
    @Option(names = "--system-prompt", paramLabel = "TEXT", description = "System prompt sent with each prompt.")
    String systemPrompt;

    public static void main(String[] args) {
        System.exit(Commands.execute(new ThroughputBenchmark(), System.out, System.err, args));
    }

    @Override
    public Integer call() throws Exception {
        Commands.inRange(spec, "--prompts", prompts, 1, 1_000_000, "a positive number of prompts");
        Commands.inRange(spec, "--max-tokens", maxTokens, 1, Integer.MAX_VALUE, "a positive token count");
        Commands.inRange(spec, "--slots", slots, 1, 1024, "1 to 1024 slots");
        var options = new Configuration();
        options.set(Qwen3Options.MODEL, LocalRun.model(spec, model));
        options.set(Qwen3Options.MAX_IN_FLIGHT, maxInFlight);
        options.set(Qwen3Options.MAX_BATCH_SEQUENCES, maxBatch);
        if (quantize != null) {
            options.set(Qwen3Options.QUANTIZE, quantize);
        }
        if (threads != null) {
            options.set(Qwen3Options.THREADS, threads);
        }
        // the options named by the flags that set them
        Map<ConfigOption<?>, String> flags = Map.of(Qwen3Options.MAX_IN_FLIGHT, "--max-in-flight",
                Qwen3Options.MAX_BATCH_SEQUENCES, "--max-batch", Qwen3Options.THREADS, "--threads", Qwen3Options.QUANTIZE, "--quantize");
        try {
            Qwen3Options.validate(options, o -> flags.getOrDefault(o, o.key()));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        if (promptsFile != null && !Files.isRegularFile(promptsFile)) {
            throw new ParameterException(spec.commandLine(), "--prompts-file " + promptsFile + ": "
                    + (Files.isDirectory(promptsFile) ? "a directory, expected a text file" : "no such file") + " (one prompt per line)");
        }
        List<String> texts = promptsFile != null
                ? Files.readAllLines(promptsFile).stream().filter(l -> !l.isBlank()).toList()
                : Arrays.stream(Quickstart.QUESTIONS).toList();
        if (texts.isEmpty()) {
            throw new ParameterException(spec.commandLine(), "--prompts-file " + promptsFile + " has no prompt (one per line)");
        }
        try (var kafka = EmbeddedKafka.start()) {
            var topics = new KafkaInferenceJob.Topics(kafka.bootstrapServers(), "prompts", "completions", "dead-letters", "bench");
            kafka.createTopics(slots, topics.input(), topics.output(), topics.deadLetters());
            List<byte[][]> records = new ArrayList<>();
            for (int i = 0; i < prompts; i++) {
                String text = texts.get(i % texts.size()) + (promptsFile != null ? "" : " (request " + i + ")");
                var p = PromptRecord.of("p" + i, text).withSlaMs(600_000);
                p.systemPrompt = systemPrompt;
                p.enableThinking = false;
                p.maxTokens = maxTokens;
                records.add(new byte[][] {p.id.getBytes(StandardCharsets.UTF_8), RecordCodec.encodePromptAvro(p)});
            }
            kafka.produce(topics.input(), records);

            var cluster = new Configuration();
            cluster.set(TaskManagerOptions.NUM_TASK_SLOTS, slots);
            var env = StreamExecutionEnvironment.createLocalEnvironment(slots, cluster);
            env.enableCheckpointing(1000);
            KafkaInferenceJob.addPipeline(env, topics, options, Qwen3Kafka.Format.AVRO, false);
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
            if (LocalRun.failed(job)) {
                System.err.println("throughput: the job failed: " + LocalRun.failure(job));
                return 1;
            }
            job.cancel().get(); // every completion is committed and read (see LocalRun.finished)
            double seconds = (last[0] - ready) / 1e9, total = (last[0] - submitted) / 1e9;
            System.out.printf("records: %d, generated tokens: %d%n", read.size(), tokens[0]);
            System.out.printf("steady state (engine ready -> last committed completion): %.1f s, %.2f records/s, %.1f tokens/s%n",
                    seconds, read.size() / seconds, tokens[0] / seconds);
            System.out.printf("total wall time (incl. job start and model load): %.1f s, %.2f records/s%n", total, read.size() / total);
        }
        return 0;
    }
}
