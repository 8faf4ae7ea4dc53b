package io.flinkqwen3.examples;

import io.flinkqwen3.cli.Commands;
import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Options;
import io.flinkqwen3.flink.sql.Qwen3Classify;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.Callable;
import org.apache.flink.configuration.Configuration;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * Kafka-fed classification: support messages from a Kafka topic, each labelled with one of
 * {@link #LABELS} under a system prompt; one JSON line per message with its label. The answer is
 * decoded under {@link Qwen3Classify#labelSchema}, so it is never anything but one of them.
 */
@Command(name = "classify", mixinStandardHelpOptions = true, versionProvider = Commands.Version.class, sortOptions = false,
        description = {"Starts a Kafka broker and a local Flink cluster in this JVM, sends support messages through the Qwen3 "
                + "operator and prints one JSON line per message with its label (one of billing, technical, shipping, other).",
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
        String schema = Qwen3Classify.labelSchema(LABELS);
        List<PromptRecord> messages = new ArrayList<>();
        for (int i = 0; i < flags.records; i++) {
            var p = PromptRecord.of("message-" + i, MESSAGES[i % MESSAGES.length]);
            p.systemPrompt = SYSTEM;
            p.jsonSchema = schema;
            p.enableThinking = false;
            messages.add(p);
        }
        var options = new Configuration();
        options.set(Qwen3Options.MODEL, LocalRun.model(spec, flags.model));
        options.set(Qwen3Options.DEFAULT_MAX_TOKENS, 32); // the shortest {"label": ...} takes about 18 tokens
        var outcomes = LocalRun.operator("classify", messages, options, out, c -> {
            var line = new LinkedHashMap<String, Object>();
            line.put("id", c.id);
            line.put("label", Qwen3Classify.labelOf(c.answer));
            line.put("latency_ms", c.latencyMs);
            line.put("finish_reason", c.finishReason);
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
