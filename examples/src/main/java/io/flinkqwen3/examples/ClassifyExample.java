package io.flinkqwen3.examples;

import io.flinkqwen3.cli.Commands;
import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Options;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.flink.configuration.Configuration;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Kafka-fed classification: support messages from a Kafka topic, each carrying the labels
 * {@link #LABELS} and a system prompt. The engine scores every label after the prompt (label
 * scoring: one prefill, no generated text), so the label is always one of them; one JSON line per
 * message with its label and each label's probability. Messages whose best label is less probable
 * than {@code --min-confidence} come from the low-confidence topic ({@code "low_confidence": true}).
 */
@Command(name = "classify", mixinStandardHelpOptions = true, versionProvider = Commands.Version.class, sortOptions = false,
        description = {"Starts a Kafka broker and a local Flink cluster in this JVM, sends support messages through the Qwen3 "
                + "operator and prints one JSON line per message with its label (one of billing, technical, shipping, other) "
                + "and each label's probability.",
                "Exit code 0 when every message has an outcome."})
public final class ClassifyExample implements Callable<Integer> {
    static final List<String> LABELS = List.of("billing", "technical", "shipping", "other");
    static final String SYSTEM = "You route customer support messages. Answer with the team that handles the message: "
            + String.join(", ", LABELS) + ".";
    static final String[] MESSAGES = {
        "I was charged twice for my subscription this month.",
        "The app crashes every time I open the settings page.",
        "My parcel has been stuck in Rotterdam for a week.",
        "Can I change the e-mail address on my invoice?",
        "Do you have a shop in Vienna?",
        "The router keeps dropping the Wi-Fi connection at night.",
    };

    private final PrintStream out;
    @Spec
    CommandSpec spec;
    @Mixin
    LocalRun.Flags flags;
    @Option(names = "--min-confidence", paramLabel = "P", defaultValue = "0.5",
            description = "Messages whose best label is less probable than this (0 to 1) go to the low-confidence topic "
                    + "(default: ${DEFAULT-VALUE}).")
    double minConfidence;

    ClassifyExample(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out));
    }

    /** Runs the example with these arguments, printing outcomes to {@code out}; returns the exit code. */
    public static int run(String[] args, PrintStream out) {
        return Commands.execute(new ClassifyExample(out), out, System.err, args);
    }

    @Override
    public Integer call() throws Exception {
        Commands.inRange(spec, "--records", flags.records, 1, 100_000, "a number of records from 1 to 100000");
        Commands.inRange(spec, "--min-confidence", minConfidence, 0, 1, "a probability from 0 to 1");
        List<PromptRecord> messages = new ArrayList<>();
        for (int i = 0; i < flags.records; i++) {
            var p = PromptRecord.of("message-" + i, MESSAGES[i % MESSAGES.length]);
            p.systemPrompt = SYSTEM;
            p.labels = LABELS;
            p.enableThinking = false;
            messages.add(p);
        }
        var options = new Configuration();
        options.set(Qwen3Options.MODEL, LocalRun.model(spec, flags.model));
        options.set(Qwen3Options.MIN_CONFIDENCE, minConfidence);
        var outcomes = LocalRun.operator("classify", messages, options, out, c -> {
            var line = new LinkedHashMap<String, Object>();
            line.put("id", c.id);
            line.put("label", c.label);
            line.put("label_probabilities", c.labelProbabilities);
            line.put("latency_ms", c.latencyMs);
            return line;
        });
        if (outcomes == null) {
            return 1;
        }
        System.err.printf("classify: %d messages labelled, %d dead letters, in %.1f s%n", outcomes.answered().size(),
                outcomes.deadLetters().size(), outcomes.seconds());
        return 0;
    }
}
