package io.flinkqwen3.examples;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flinkqwen3.flink.CompletionRecord;
import io.flinkqwen3.flink.DeadLetter;
import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Kafka;
import io.flinkqwen3.flink.Qwen3Options;
import io.flinkqwen3.flink.RecordCodec;
import io.flinkqwen3.flink.TaskManagerEngines;
import io.flinkqwen3.model.ModelFormatException;
import io.flinkqwen3.model.ModelLocator;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * What the runnable examples share: an embedded Kafka broker and a local Flink cluster (one task
 * manager, two slots) in this JVM, one JSON line per outcome on stdout, progress on stderr.
 */
final class LocalRun {
    static final ObjectMapper JSON = new ObjectMapper();
    /** How long an example waits for every outcome before it gives up. */
    static final Duration GIVE_UP = Duration.ofMinutes(30);

    private LocalRun() {}

    /** The options of the classify, enrich and sql launchers. */
    static final class Flags {
        @Option(names = "--model", paramLabel = "LOCATION", defaultValue = "Qwen/Qwen3-0.6B",
                description = "Model directory, .gguf file or Hugging Face repo id (default: ${DEFAULT-VALUE}, downloaded into "
                        + "the Hugging Face cache).")
        String model;
        @Option(names = "--records", paramLabel = "N", defaultValue = "8", description = "Records to send (default: ${DEFAULT-VALUE}).")
        int records;
    }

    /**
     * The model location of {@code --model}, checked before anything starts (usage error otherwise):
     * an existing path, made absolute for the task manager, or a Hugging Face repo id.
     */
    static String model(CommandSpec spec, String location) {
        try {
            ModelLocator.check(location);
        } catch (ModelFormatException e) {
            throw new ParameterException(spec.commandLine(), "--model: " + e.getMessage());
        }
        return KafkaInferenceJob.localPathAbsolute(location);
    }

    /** The outcomes of a run: completions and dead-letter reasons by record id. */
    record Outcomes(Map<String, CompletionRecord> answered, Map<String, String> deadLetters, double seconds) {}

    /**
     * Sends the prompts (Avro) through the Qwen3 operator with these options (the model from
     * {@link #model}), prints {@code line(completion)} (with {@code "low_confidence": true} for a
     * classification below min-confidence, which is among the answered) or {@code {id, dead_letter}}
     * as one JSON line per outcome, and returns when every prompt has one; null when the job failed
     * or the run gave up (said on stderr).
     */
    static Outcomes operator(String name, List<PromptRecord> prompts, Configuration options, PrintStream out,
                             Function<CompletionRecord, Map<String, Object>> line) throws Exception {
        try (var kafka = EmbeddedKafka.start()) {
            var topics = new KafkaInferenceJob.Topics(kafka.bootstrapServers(), "prompts", "completions", "dead-letters", name,
                    "low-confidence");
            kafka.createTopics(2, topics.input(), topics.output(), topics.deadLetters(), topics.lowConfidence());
            List<byte[][]> records = new ArrayList<>();
            for (PromptRecord p : prompts) {
                records.add(new byte[][] {p.id.getBytes(StandardCharsets.UTF_8), RecordCodec.encodePromptAvro(p)});
            }
            kafka.produce(topics.input(), records);
            System.err.printf("%s: %d records in Kafka at %s, model %s%n", name, prompts.size(), kafka.bootstrapServers(),
                    options.get(Qwen3Options.MODEL));

            var env = StreamExecutionEnvironment.createLocalEnvironment(2, cluster());
            env.enableCheckpointing(1000);
            KafkaInferenceJob.addPipeline(env, topics, options, Qwen3Kafka.Format.AVRO, false);
            long start = System.nanoTime();
            var job = env.executeAsync("flink-qwen3 " + name);

            Map<String, CompletionRecord> answered = new LinkedHashMap<>();
            Map<String, String> deadLetters = new LinkedHashMap<>();
            var read = List.of(topics.output(), topics.deadLetters(), topics.lowConfidence());
            boolean complete = kafka.readCommitted(read, GIVE_UP, r -> {
                if (!r.topic().equals(topics.deadLetters())) {
                    CompletionRecord c = RecordCodec.decodeCompletionAvro(r.value());
                    answered.put(c.id, c);
                    var printed = new LinkedHashMap<>(line.apply(c));
                    if (r.topic().equals(topics.lowConfidence())) {
                        printed.put("low_confidence", true);
                    }
                    print(out, printed);
                } else {
                    DeadLetter d = RecordCodec.decodeDeadLetterAvro(r.value());
                    deadLetters.put(d.id, d.reason);
                    var letter = new LinkedHashMap<String, Object>();
                    letter.put("id", d.id);
                    letter.put("dead_letter", d.reason);
                    print(out, letter);
                }
            }, () -> answered.size() + deadLetters.size() >= prompts.size() || failed(job));
            if (!finished(name, job, complete, answered.size() + deadLetters.size(), prompts.size())) {
                return null;
            }
            return new Outcomes(answered, deadLetters, (System.nanoTime() - start) / 1e9);
        }
    }

    /** The local cluster: one task manager with two slots. */
    static Configuration cluster() {
        var cluster = new Configuration();
        cluster.set(TaskManagerOptions.NUM_TASK_SLOTS, 2);
        return cluster;
    }

    /**
     * Whether every outcome was read, then cancelling the job; otherwise says why on stderr (the
     * job's failure, or giving up after {@link #GIVE_UP}, cancelling it).
     */
    static boolean finished(String name, JobClient job, boolean complete, int outcomes, int expected) throws Exception {
        if (failed(job)) {
            System.err.println(name + ": the job failed: " + failure(job));
            return false;
        }
        if (!complete) {
            job.cancel().get();
            System.err.printf("%s: gave up after %d min with %d outcomes of %d records%n", name, GIVE_UP.toMinutes(), outcomes, expected);
            return false;
        }
        // Every outcome is committed and read, so the job (its source unbounded) can be cancelled. A
        // bounded source would end it by itself, but Flink's next periodic checkpoint then meets
        // tasks that are closing and is declined, logged as a CheckpointException with a stack trace.
        job.cancel().get();
        return true;
    }

    static void print(PrintStream out, Object line) {
        try {
            out.println(JSON.writeValueAsString(line));
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Whether the job has failed (a model that cannot be loaded fails it at once, without restarts). */
    static boolean failed(JobClient job) {
        try {
            return job.getJobStatus().get() == JobStatus.FAILED;
        } catch (Exception e) {
            // a job that has ended may be gone from the cluster: its result says how it ended
            return job.getJobExecutionResult().isCompletedExceptionally();
        }
    }

    /** Why the job failed: the innermost message that says so (for a model, the loader's). */
    static String failure(JobClient job) {
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
}
