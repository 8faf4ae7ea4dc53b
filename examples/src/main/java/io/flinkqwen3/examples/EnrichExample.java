package io.flinkqwen3.examples;

import io.flinkqwen3.cli.Commands;
import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Options;
import java.io.IOException;
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
 * Structured enrichment: order events (free text) from a Kafka topic, the fields of each extracted
 * as JSON under {@link #SCHEMA} (decoding is constrained, so every answer parses and validates),
 * one JSON line per event with its fields.
 */
@Command(name = "enrich", mixinStandardHelpOptions = true, versionProvider = Commands.Version.class, sortOptions = false,
        description = {"Starts a Kafka broker and a local Flink cluster in this JVM, sends order events through the Qwen3 "
                + "operator with a JSON Schema and prints one JSON line per event with the fields extracted.",
                "Exit code 0 when every event has an outcome."})
public final class EnrichExample implements Callable<Integer> {
    static final String SYSTEM = "Extract the order in the event as JSON: the customer's name, the city it ships to, "
            + "the amount in euros and how urgent it is.";
    static final String SCHEMA = """
            {"type": "object",
             "properties": {
               "customer": {"type": "string"},
               "city": {"type": "string"},
               "amount_eur": {"type": "number"},
               "priority": {"enum": ["low", "normal", "high"]}},
             "required": ["customer", "city", "amount_eur", "priority"],
             "additionalProperties": false}""";
    static final String[] EVENTS = {
        "Anna Weber ordered two chairs for 129.90 EUR, delivery to Rotterdam next week.",
        "URGENT: Luca Bianchi needs the replacement router in Milan by tomorrow, 89 euros paid.",
        "Order 5531: Sofia Costa, Lisbon, 1,250.00 EUR, no rush.",
        "Please ship the 3 lamps (45 EUR each) to Jan Novak in Prague as soon as possible.",
        "Marie Dubois, Lyon: a gift card worth 50 euros, standard shipping.",
    };

    private final PrintStream out;
    @Spec
    CommandSpec spec;
    @Mixin
    LocalRun.Flags flags;

    EnrichExample(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out));
    }

    /** Runs the example with these arguments, printing outcomes to {@code out}; returns the exit code. */
    public static int run(String[] args, PrintStream out) {
        return Commands.execute(new EnrichExample(out), out, System.err, args);
    }

    @Override
    public Integer call() throws Exception {
        Commands.inRange(spec, "--records", flags.records, 1, 100_000, "a number of records from 1 to 100000");
        List<PromptRecord> events = new ArrayList<>();
        for (int i = 0; i < flags.records; i++) {
            var p = PromptRecord.of("event-" + i, EVENTS[i % EVENTS.length]);
            p.systemPrompt = SYSTEM;
            p.jsonSchema = SCHEMA;
            p.enableThinking = false; // extraction needs no thought; the schema keeps the answer to the fields
            events.add(p);
        }
        var options = new Configuration();
        options.set(Qwen3Options.MODEL, LocalRun.model(spec, flags.model));
        options.set(Qwen3Options.DEFAULT_MAX_TOKENS, 96);
        var outcomes = LocalRun.operator("enrich", events, options, out, c -> {
            var line = new LinkedHashMap<String, Object>();
            line.put("id", c.id);
            line.put("latency_ms", c.latencyMs);
            line.put("finish_reason", c.finishReason);
            try {
                line.put("fields", LocalRun.JSON.readTree(c.answer));
            } catch (IOException e) { // constrained decoding makes this unreachable; the text is then shown as it came
                line.put("answer", c.answer);
            }
            return line;
        });
        if (outcomes == null) {
            return 1;
        }
        System.err.printf("enrich: %d events enriched, %d dead letters, in %.1f s%n", outcomes.answered().size(),
                outcomes.deadLetters().size(), outcomes.seconds());
        return 0;
    }
}
