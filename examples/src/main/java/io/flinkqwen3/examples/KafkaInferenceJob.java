package io.flinkqwen3.examples;

import io.flinkqwen3.cli.Commands;
import io.flinkqwen3.flink.Qwen3Inference;
import io.flinkqwen3.flink.Qwen3Kafka;
import io.flinkqwen3.flink.Qwen3Options;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.KafkaException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Reads prompts from an existing Kafka cluster, answers them with Qwen3 and writes completions to
 * another topic (exactly once), rejected records to a dead-letter topic. Before the job starts it
 * checks, within {@code --broker-timeout}, that a broker answers and the input topic exists.
 */
@Command(name = "kafka-job", mixinStandardHelpOptions = true, versionProvider = Commands.Version.class, sortOptions = false,
        description = {"Reads prompts from a Kafka topic, answers them with Qwen3 in Flink and writes completions to another "
                + "topic (exactly once), records that cannot be answered to a dead-letter topic.",
                "Runs in a local Flink cluster in this JVM, or on a cluster when submitted with 'flink run'."})
public final class KafkaInferenceJob implements Callable<Integer> {
    /** Where the job reads and writes; lowConfidence: the topic of classifications below min-confidence, or null (none). */
    public record Topics(String bootstrapServers, String input, String output, String deadLetters, String groupId,
                         String lowConfidence) {
        public Topics(String bootstrapServers, String input, String output, String deadLetters, String groupId) {
            this(bootstrapServers, input, output, deadLetters, groupId, null);
        }
    }

    @Spec
    CommandSpec spec;
    @Option(names = "--bootstrap-servers", required = true, paramLabel = "HOST:PORT[,...]", description = "The Kafka cluster.")
    String bootstrapServers;
    @Option(names = "--input", required = true, paramLabel = "TOPIC", description = "Topic of the prompts (Avro or JSON PromptRecords).")
    String input;
    @Option(names = "--output", required = true, paramLabel = "TOPIC", description = "Topic the completions go to.")
    String output;
    @Option(names = "--dead-letters", paramLabel = "TOPIC", description = "Topic of the records that cannot be answered "
            + "(default: INPUT-dead-letters).")
    String deadLetters;
    @Option(names = "--model", paramLabel = "LOCATION", defaultValue = "Qwen/Qwen3-0.6B",
            description = "Model directory, .gguf file or Hugging Face repo id, as each task manager sees it (default: ${DEFAULT-VALUE}).")
    String model;
    @Option(names = "--group-id", paramLabel = "ID", defaultValue = "flink-qwen3", description = "Consumer group (default: ${DEFAULT-VALUE}).")
    String groupId;
    @Option(names = "--format", paramLabel = "avro|json", defaultValue = "avro",
            description = "Format of the records written (input: either) (default: ${DEFAULT-VALUE}).")
    Qwen3Kafka.Format format;
    @Option(names = "--parallelism", paramLabel = "N", defaultValue = "2", description = "Operator parallelism (default: ${DEFAULT-VALUE}).")
    int parallelism;
    @Option(names = "--checkpoint-ms", paramLabel = "MS", defaultValue = "5000",
            description = "Checkpoint interval; completions are committed at checkpoints (default: ${DEFAULT-VALUE}).")
    long checkpointMs;
    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "256",
            description = "Generated tokens of records without max_tokens (default: ${DEFAULT-VALUE}).")
    int maxTokens;
    @Option(names = "--default-sla-ms", paramLabel = "MS", defaultValue = "30000",
            description = "SLA of records without sla_ms or deadline_ms (default: ${DEFAULT-VALUE}).")
    long defaultSlaMs;
    @Option(names = "--min-confidence", paramLabel = "P", defaultValue = "0",
            description = "Records with labels whose best label is less probable than this (0 to 1) go to the low-confidence "
                    + "topic instead of the output (default: ${DEFAULT-VALUE}, none).")
    double minConfidence;
    @Option(names = "--low-confidence", paramLabel = "TOPIC", description = "Topic of the classifications below "
            + "--min-confidence (default: OUTPUT-low-confidence).")
    String lowConfidence;
    @Option(names = "--bounded", description = "Stop at the input's offsets at start instead of running forever.")
    boolean bounded;
    @Option(names = "--broker-timeout-s", paramLabel = "S", defaultValue = "30",
            description = "How long to wait for a broker to answer before giving up (default: ${DEFAULT-VALUE}).")
    int brokerTimeoutSeconds;

    public static void main(String[] args) {
        System.exit(Commands.execute(new KafkaInferenceJob(), System.out, System.err, args));
    }

    @Override
    public Integer call() throws Exception {
        Commands.inRange(spec, "--parallelism", parallelism, 1, 1 << 15, "a positive number of subtasks");
        Commands.inRange(spec, "--checkpoint-ms", checkpointMs, 10, Long.MAX_VALUE, "at least 10 (Flink's minimum interval)");
        Commands.inRange(spec, "--max-tokens", maxTokens, 1, Integer.MAX_VALUE, "a positive token count");
        Commands.inRange(spec, "--default-sla-ms", defaultSlaMs, 0, Long.MAX_VALUE, "0 or more milliseconds");
        Commands.inRange(spec, "--broker-timeout-s", brokerTimeoutSeconds, 1, 3600, "1 to 3600 seconds");
        Commands.inRange(spec, "--min-confidence", minConfidence, 0, 1, "a probability from 0 to 1");
        var topics = new Topics(bootstrapServers, input, output, deadLetters != null ? deadLetters : input + "-dead-letters", groupId,
                minConfidence > 0 ? (lowConfidence != null ? lowConfidence : output + "-low-confidence") : null);
        var options = new Configuration();
        options.set(Qwen3Options.MIN_CONFIDENCE, minConfidence);
        options.set(Qwen3Options.MODEL, localPathAbsolute(model));
        options.set(Qwen3Options.DEFAULT_MAX_TOKENS, maxTokens);
        options.set(Qwen3Options.DEFAULT_SLA, Duration.ofMillis(defaultSlaMs));
        checkBroker(topics, Duration.ofSeconds(brokerTimeoutSeconds));
        var env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(parallelism);
        env.enableCheckpointing(checkpointMs);
        addPipeline(env, topics, options, format, bounded);
        env.execute("flink-qwen3: " + topics.input() + " -> " + topics.output());
        return 0;
    }

    /**
     * Fails at once, instead of a job that retries forever, when no broker answers within
     * {@code timeout} or the input topic does not exist (a source would wait for it forever).
     */
    static void checkBroker(Topics topics, Duration timeout) {
        int millis = (int) Math.min(Integer.MAX_VALUE, timeout.toMillis());
        Set<String> existing;
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, topics.bootstrapServers(),
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, millis, AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, millis))) {
            existing = new TreeSet<>(admin.listTopics().names().get(timeout.toMillis(), TimeUnit.MILLISECONDS));
        } catch (TimeoutException | ExecutionException | KafkaException e) {
            throw new IllegalStateException("no Kafka broker answered at " + topics.bootstrapServers() + " within "
                    + timeout.toSeconds() + " s (check --bootstrap-servers, or wait longer with --broker-timeout-s): " + reason(e), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for " + topics.bootstrapServers(), e);
        }
        if (!existing.contains(topics.input())) {
            throw new IllegalStateException("the input topic '" + topics.input() + "' does not exist at " + topics.bootstrapServers()
                    + " (topics there: " + (existing.isEmpty() ? "none" : String.join(", ", existing)) + ")");
        }
    }

    /**
     * Why a broker call failed, for a message: the first message down the cause chain (an
     * ExecutionException unwrapped), else the class name of the failure (our own wait timing out
     * throws a TimeoutException without a message).
     */
    static String reason(Throwable e) {
        Throwable failure = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t.getMessage() != null && !t.getMessage().isBlank()) {
                return t.getMessage();
            }
        }
        return failure.getClass().getName();
    }

    /** A model path that exists here, made absolute: the task managers do not share this working directory. */
    static String localPathAbsolute(String model) {
        try {
            Path path = Path.of(model);
            return Files.exists(path) ? path.toAbsolutePath().normalize().toString() : model;
        } catch (java.nio.file.InvalidPathException e) {
            return model; // not a path: the operator says what is wrong with it
        }
    }

    /** Adds source, inference and the sinks (completions, dead letters, low-confidence classifications if it has a topic). */
    public static void addPipeline(StreamExecutionEnvironment env, Topics topics, Configuration options,
                                   Qwen3Kafka.Format format, boolean bounded) {
        var source = Qwen3Kafka.promptSource(topics.bootstrapServers(), topics.input(), topics.groupId());
        if (bounded) {
            source.setBounded(OffsetsInitializer.latest());
        }
        var prompts = env.fromSource(source.build(), WatermarkStrategy.noWatermarks(), "prompts from " + topics.input())
                .uid("qwen3-prompt-source");
        var completions = Qwen3Inference.builder().options(options).build().apply(prompts);
        completions.sinkTo(Qwen3Kafka.completionSink(topics.bootstrapServers(), topics.output(), "qwen3-" + topics.output(), format))
                .uid("qwen3-completion-sink").name("completions to " + topics.output());
        completions.getSideOutput(Qwen3Inference.DEAD_LETTERS)
                .sinkTo(Qwen3Kafka.deadLetterSink(topics.bootstrapServers(), topics.deadLetters(), "qwen3-" + topics.deadLetters(), format))
                .uid("qwen3-dead-letter-sink").name("dead letters to " + topics.deadLetters());
        if (topics.lowConfidence() != null) {
            completions.getSideOutput(Qwen3Inference.LOW_CONFIDENCE)
                    .sinkTo(Qwen3Kafka.completionSink(topics.bootstrapServers(), topics.lowConfidence(),
                            "qwen3-" + topics.lowConfidence(), format))
                    .uid("qwen3-low-confidence-sink").name("low-confidence classifications to " + topics.lowConfidence());
        }
    }
}
