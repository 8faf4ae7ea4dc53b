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

    @Override
    public Integer call() throws Exception {
        Commands.inRange(spec, "--prompts", count, 1, 100_000, "a number of prompts from 1 to 100000");
        Commands.inRange(spec, "--max-tokens", maxTokens, 1, Integer.MAX_VALUE, "a positive token count");
        List<PromptRecord> prompts = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            prompts.add(PromptRecord.of("prompt-" + i, QUESTIONS[i % QUESTIONS.length]).withSlaMs(SLAS_MS[i % SLAS_MS.length]));
        }
        var options = new Configuration();
        options.set(Qwen3Options.MODEL, LocalRun.model(spec, model));
        options.set(Qwen3Options.DEFAULT_MAX_TOKENS, maxTokens);
        var outcomes = LocalRun.operator("quickstart", prompts, options, out, c -> {
            var line = new LinkedHashMap<String, Object>();
            line.put("id", c.id);
            line.put("sla_ms", c.slaMs);
            line.put("thinking_budget", c.thinkingBudget);
            line.put("latency_ms", c.latencyMs);
            line.put("sla_met", c.slaMet);
            line.put("finish_reason", c.finishReason);
            line.put("thinking_tokens", c.thinkingTokens);
            line.put("answer_tokens", c.answerTokens);
            line.put("answer", c.answer);
            return line;
        });
        if (outcomes == null) {
            return 1;
        }
        var answered = outcomes.answered();
        long met = answered.values().stream().filter(c -> c.slaMet).count();
        System.err.printf("quickstart: %d/%d prompts answered in %.1f s (%.2f records/s), SLA met for %d (%.0f%%)%s%n",
                answered.size(), count, outcomes.seconds(), answered.size() / outcomes.seconds(), met,
                100.0 * met / Math.max(1, answered.size()),
                outcomes.deadLetters().isEmpty() ? "" : "; " + outcomes.deadLetters().size() + " dead letters (see their reasons above)");
        return answered.size() == count ? 0 : 1;
    }
}
