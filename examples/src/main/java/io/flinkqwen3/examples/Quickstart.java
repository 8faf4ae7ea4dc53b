package io.flinkqwen3.examples;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.flinkqwen3.cli.Commands;
import io.flinkqwen3.flink.CompletionRecord;
import io.flinkqwen3.flink.DeadLetter;
import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Kafka;
import io.flinkqwen3.flink.Qwen3Options;
import io.flinkqwen3.flink.RecordCodec;
import io.flinkqwen3.flink.TaskManagerEngines;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The quickstart: an embedded Kafka broker and a local Flink cluster (one task manager, two slots),
 * a handful of prompts with different SLAs, the Qwen3 operator, and one JSON line per outcome on
 * stdout: a completion with its thinking budget, latency and whether the SLA was met, or a dead
 * letter with its reason. It ends when every prompt has an outcome.
 */
@Command(name = "quickstart", mixinStandardHelpOptions = true, versionProvider = Commands.Version.class, sortOptions = false,
        description = {"Starts a Kafka broker and a local Flink cluster in this JVM, sends a few prompts with SLAs from 1.5 s "
                + "to 60 s through the Qwen3 operator and prints one JSON line per completion or dead letter.",
                "Exit code 0 when every prompt was answered."})
public final class Quickstart implements Callable<Integer> {
    static final String[] QUESTIONS = {
        "What is the capital of France?",
        "Classify the sentiment: the battery died after two days.",
        "Summarise in one sentence: Flink processes unbounded streams with exactly-once state.",
        "Give me three prime numbers.",
        "Translate to German: good morning.",
        "Is 17 a prime number? Answer yes or no.",
        "Extract the city: 'Our order ships from Rotterdam on Monday.'",
        "Name a colour of the sky.",
    };
    /** SLAs from tight (no room to think) to relaxed. */
    static final long[] SLAS_MS = {1_500, 5_000, 20_000, 60_000};

    private final PrintStream out;
    @Spec
    CommandSpec spec;
    @Option(names = "--model", paramLabel = "LOCATION", defaultValue = "Qwen/Qwen3-0.6B",
            description = "Model directory, .gguf file or Hugging Face repo id (default: ${DEFAULT-VALUE}, downloaded into "
                    + "the Hugging Face cache).")
    String model;
    @Option(names = "--prompts", paramLabel = "N", defaultValue = "8", description = "Prompts to send (default: ${DEFAULT-VALUE}).")
    int count;
    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "128",
            description = "Generated tokens per prompt, thinking plus answer (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    Quickstart(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out));
    }

    /** Runs the quickstart with these arguments, printing outcomes to {@code out}; returns the exit code. */
    public static int run(String[] args, PrintStream out) {
        return Commands.execute(new Quickstart(out), out, System.err, args);
    }

    /** Whether the job has failed (a model that cannot be loaded fails it at once, without restarts). */
    private static boolean failed(JobClient job) {
        try {
            return job.getJobStatus().get() == JobStatus.FAILED;
        } catch (Exception e) {
            // a job that has ended may be gone from the cluster: its result says how it ended
            return job.getJobExecutionResult().isCompletedExceptionally();
        }
    }

    /** Why the job failed: the innermost message that says so (for a model, the loader's). */
    private static String failure(JobClient job) {
        try {
            job.getJobExecutionResult().get();
            return "unknown";
        } catch (Exception e) {
            String why = String.valueOf(e);
            for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
                if (t instanceof TaskManagerEngines.ModelUnavailableException) {
                    return t.getMessage();
                }
                why = t.getMessage() != null ? t.getMessage() : t.toString();
            }
            return why;
        }
    }

    @Override
    public Integer call() throws Exception {
        Commands.inRange(spec, "--prompts", count, 1, 100_000, "a number of prompts from 1 to 100000");
        Commands.inRange(spec, "--max-tokens", maxTokens, 1, Integer.MAX_VALUE, "a positive token count");
        String location = KafkaInferenceJob.localPathAbsolute(model);
        var json = new ObjectMapper();
        try (var kafka = EmbeddedKafka.start()) {
            var topics = new KafkaInferenceJob.Topics(kafka.bootstrapServers(), "prompts", "completions", "dead-letters", "quickstart");
            kafka.createTopics(2, topics.input(), topics.output(), topics.deadLetters());
            List<byte[][]> records = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                var p = PromptRecord.of("prompt-" + i, QUESTIONS[i % QUESTIONS.length]).withSlaMs(SLAS_MS[i % SLAS_MS.length]);
                records.add(new byte[][] {p.id.getBytes(StandardCharsets.UTF_8), RecordCodec.encodePromptAvro(p)});
            }
            kafka.produce(topics.input(), records);
            System.err.printf("quickstart: %d prompts in Kafka at %s, model %s%n", count, kafka.bootstrapServers(), model);

            var cluster = new Configuration();
            cluster.set(TaskManagerOptions.NUM_TASK_SLOTS, 2);
            var env = StreamExecutionEnvironment.createLocalEnvironment(2, cluster);
            env.enableCheckpointing(1000);
            var options = new Configuration();
            options.set(Qwen3Options.MODEL, location);
            options.set(Qwen3Options.DEFAULT_MAX_TOKENS, maxTokens);
            KafkaInferenceJob.addPipeline(env, topics, options, Qwen3Kafka.Format.AVRO, true);
            long start = System.nanoTime();
            var job = env.executeAsync("flink-qwen3 quickstart");

            Map<String, CompletionRecord> answered = new LinkedHashMap<>();
            Map<String, String> deadLetters = new LinkedHashMap<>();
            boolean complete = kafka.readCommitted(List.of(topics.output(), topics.deadLetters()), Duration.ofMinutes(30), r -> {
                var line = new LinkedHashMap<String, Object>();
                if (r.topic().equals(topics.output())) {
                    CompletionRecord c = RecordCodec.decodeCompletionAvro(r.value());
                    answered.put(c.id, c);
                    line.put("id", c.id);
                    line.put("sla_ms", c.slaMs);
                    line.put("thinking_budget", c.thinkingBudget);
                    line.put("latency_ms", c.latencyMs);
                    line.put("sla_met", c.slaMet);
                    line.put("finish_reason", c.finishReason);
                    line.put("thinking_tokens", c.thinkingTokens);
                    line.put("answer_tokens", c.answerTokens);
                    line.put("answer", c.answer);
                } else {
                    DeadLetter d = RecordCodec.decodeDeadLetterAvro(r.value());
                    deadLetters.put(d.id, d.reason);
                    line.put("id", d.id);
                    line.put("dead_letter", d.reason);
                }
                try {
                    out.println(json.writeValueAsString(line));
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, () -> answered.size() + deadLetters.size() >= count || failed(job));
            if (failed(job)) {
                System.err.println("quickstart: the job failed: " + failure(job));
                return 1;
            }
            if (!complete) {
                job.cancel().get();
                System.err.printf("quickstart: gave up after 30 min with %d answered and %d dead letters of %d prompts%n",
                        answered.size(), deadLetters.size(), count);
                return 1;
            }
            job.getJobExecutionResult().get();
            double seconds = (System.nanoTime() - start) / 1e9;
            long met = answered.values().stream().filter(c -> c.slaMet).count();
            System.err.printf("quickstart: %d/%d prompts answered in %.1f s (%.2f records/s), SLA met for %d (%.0f%%)%s%n",
                    answered.size(), count, seconds, answered.size() / seconds, met, 100.0 * met / Math.max(1, answered.size()),
                    deadLetters.isEmpty() ? "" : "; " + deadLetters.size() + " dead letters (see their reasons above)");
            return answered.size() == count ? 0 : 1;
        }
    }
}
