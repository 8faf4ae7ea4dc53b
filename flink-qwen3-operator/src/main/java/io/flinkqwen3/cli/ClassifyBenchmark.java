package io.flinkqwen3.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flinkqwen3.runtime.EngineMetrics;
import io.flinkqwen3.runtime.EngineOptions;
import io.flinkqwen3.runtime.GenerationRequest;
import io.flinkqwen3.runtime.GenerationResult;
import io.flinkqwen3.runtime.KvBlockPool;
import io.flinkqwen3.runtime.Qwen3Engine;
import io.flinkqwen3.runtime.SamplingParams;
import io.flinkqwen3.tokenizer.ChatMessage;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * Records/s of a classification job on the engine: every record is a system turn (one shared
 * instruction of about {@code --instruction-tokens} tokens) and a user turn (a message of about
 * {@code --message-tokens} tokens of its own), without thinking; all records are submitted at once
 * and the engine batches them as it does for a Flink job (up to {@code --max-sequences} in flight).
 * Three runs on the same records, each in a fresh engine (so no run finds another's prompts in the
 * prefix cache), each after a warm-up of a few other records (which, with the prefix cache, leaves
 * the instruction cached, as in a running job):
 * <ul>
 *   <li>{@code labels}: label scoring, prefix cache on;</li>
 *   <li>{@code generate}: free generation of up to the longest label's token count (greedy), prefix cache on;</li>
 *   <li>{@code labels-no-prefix-cache}: label scoring, every prompt prefilled whole.</li>
 * </ul>
 * The words are drawn from a fixed list with a seeded random generator: the same command gives the
 * same records.
 */
@Command(name = "bench-classify", mixinStandardHelpOptions = true,
        description = {"Records/s of a classification workload (a shared instruction as system turn, a message per record): "
                + "label scoring vs free generation of the label (max tokens = longest label), and label scoring with vs "
                + "without the prefix cache, each in a fresh engine with the records submitted at once.",
                "Prints a table; with --json one JSON object."})
final class ClassifyBenchmark implements Callable<Integer> {
    /** The runs, in the order they run. */
    enum Run {
        LABELS("labels", true, true),
        GENERATE("generate", false, true),
        LABELS_NO_PREFIX_CACHE("labels-no-prefix-cache", true, false);

        final String wireName;
        final boolean labels;
        final boolean prefixCache;

        Run(String wireName, boolean labels, boolean prefixCache) {
            this.wireName = wireName;
            this.labels = labels;
            this.prefixCache = prefixCache;
        }
    }

    /** Records run before each timed run (JIT; the instruction into the prefix cache). */
    static final int WARM_UP_RECORDS = 4;

    private static final String[] WORDS = ("account order invoice refund charge card payment delivery package address login "
            + "password reset error crash screen button update version install phone email support agent wait week month "
            + "late broken missing wrong double cancel subscription plan price discount coupon feature request report data "
            + "export import sync slow fast network server outage today yesterday again still never always please help thanks "
            + "customer product service team manager ticket issue problem question answer reply store app website browser")
            .split(" ");

    @ParentCommand
    Qwen3Cli cli;
    @Spec
    CommandSpec spec;
    @Mixin
    Qwen3Cli.ModelOption model;
    @Mixin
    Qwen3Cli.ThreadsOption threads;
    @Mixin
    Qwen3Cli.QuantizeOption quantize;
    @Option(names = "--records", paramLabel = "N", defaultValue = "32", description = "Records per run (default: ${DEFAULT-VALUE}).")
    int records;
    @Option(names = "--labels", paramLabel = "A,B,C", converter = Qwen3Cli.LabelListConverter.class,
            defaultValue = "billing,technical problem,account access,feature request,spam",
            description = "The labels, comma-separated (default: ${DEFAULT-VALUE}).")
    Qwen3Cli.LabelList labels;
    @Option(names = "--instruction-tokens", paramLabel = "N", defaultValue = "400",
            description = "Tokens of the shared instruction, the system turn's text (default: ${DEFAULT-VALUE}).")
    int instructionTokens;
    @Option(names = "--message-tokens", paramLabel = "N", defaultValue = "40",
            description = "Tokens of each record's message, the user turn's text (default: ${DEFAULT-VALUE}).")
    int messageTokens;
    @Option(names = "--max-sequences", paramLabel = "N", defaultValue = "32",
            description = "Requests the engine runs together (default: ${DEFAULT-VALUE}, the engine's default).")
    int maxSequences;
    @Option(names = "--runs", split = ",", paramLabel = "RUN", defaultValue = "labels,generate,labels-no-prefix-cache",
            converter = RunConverter.class, description = "Which runs, comma-separated: labels, generate, labels-no-prefix-cache "
                    + "(default: all three).")
    List<Run> runs;
    @Option(names = "--json", description = "End with one JSON object of the results.")
    boolean json;

    static final class RunConverter implements picocli.CommandLine.ITypeConverter<Run> {
        @Override
        public Run convert(String value) {
            for (Run r : Run.values()) {
                if (r.wireName.equals(value)) {
                    return r;
                }
            }
            throw new picocli.CommandLine.TypeConversionException("'" + value + "' is not a run (labels, generate, labels-no-prefix-cache)");
        }
    }

    /** One timed run's figures. */
    record Result(Run run, int records, double seconds, double promptTokens, double hitRate, long kvPeakBytes, long kvCacheBytes,
                  int outputTokens) {
        double recordsPerSecond() {
            return records / seconds;
        }
    }

    @Override
    public Integer call() {
        Qwen3Cli.inRange(spec, "--records", records, 1, 100_000, "a record count from 1 to 100000");
        Qwen3Cli.inRange(spec, "--instruction-tokens", instructionTokens, 1, 100_000, "a token count from 1 to 100000");
        Qwen3Cli.inRange(spec, "--message-tokens", messageTokens, 1, 100_000, "a token count from 1 to 100000");
        Qwen3Cli.inRange(spec, "--max-sequences", maxSequences, 1, 1024, "a count from 1 to 1024");
        try {
            GenerationRequest.builder().user("x").labels(labels.values()).build();
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--labels: " + e.getMessage());
        }
        Qwen3Cli.requireTokenizer(spec, model.location, "bench-classify cannot build its texts or score labels");
        Qwen3Tokenizer tokenizer = Qwen3Cli.tokenizer(model.location);
        var random = new SplittableRandom(42);
        String instruction = "You sort customer messages into exactly one of these categories: " + String.join(", ", labels.values())
                + ". Answer with the category only. Guidelines: ";
        instruction = text(tokenizer, instruction, instructionTokens, random);
        List<List<ChatMessage>> timed = conversations(tokenizer, instruction, records, random);
        List<List<ChatMessage>> warmUp = conversations(tokenizer, instruction, WARM_UP_RECORDS, random);
        int longestLabel = labels.values().stream().mapToInt(l -> tokenizer.encode(l).length).max().orElseThrow();
        cli.err.printf("bench-classify: %d records, instruction %d tokens, messages %d tokens, labels %s (longest %d tokens), "
                + "%d threads, up to %d in flight%n", records, tokenizer.encode(instruction).length, messageTokens, labels.values(), longestLabel,
                threads.threads, maxSequences);

        List<Result> results = new ArrayList<>();
        for (Run run : runs) {
            results.add(run(run, timed, warmUp, longestLabel));
            Result r = results.getLast();
            cli.err.printf("bench-classify: %s: %d records in %.1f s, %.2f records/s, hit rate %.2f%n", run.wireName, r.records(),
                    r.seconds(), r.recordsPerSecond(), r.hitRate());
        }
        print(results, longestLabel);
        return 0;
    }

    private Result run(Run run, List<List<ChatMessage>> timed, List<List<ChatMessage>> warmUp, int longestLabel) {
        var options = new EngineOptions(threads.threads, maxSequences, EngineOptions.defaults().maxBatchTokens(), 0, quantize.type, 0)
                .withKvCache(0, KvBlockPool.Precision.BF16, run.prefixCache);
        try (var engine = Qwen3Engine.open(model.location, options)) {
            submitAll(engine, warmUp, run, longestLabel).forEach(CompletableFuture::join);
            EngineMetrics m = engine.metrics();
            long hitsBefore = m.prefixCacheHitTokens(), lookedUpBefore = m.prefixCacheLookedUpTokens();
            long start = System.nanoTime();
            List<GenerationResult> done = submitAll(engine, timed, run, longestLabel).stream().map(CompletableFuture::join).toList();
            double seconds = (System.nanoTime() - start) / 1e9;
            long lookedUp = m.prefixCacheLookedUpTokens() - lookedUpBefore;
            return new Result(run, done.size(), seconds, done.stream().mapToInt(GenerationResult::promptTokens).average().orElse(0),
                    lookedUp == 0 ? 0 : (double) (m.prefixCacheHitTokens() - hitsBefore) / lookedUp,
                    m.kvBlocksInUsePeak() * m.kvBlockBytes(), m.kvBlocks() * m.kvBlockBytes(),
                    done.stream().mapToInt(r -> r.outputTokens().length).sum());
        }
    }

    private List<CompletableFuture<GenerationResult>> submitAll(Qwen3Engine engine, List<List<ChatMessage>> conversations, Run run,
                                                                int longestLabel) {
        List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
        for (var messages : conversations) {
            var request = GenerationRequest.builder().messages(messages).enableThinking(false).thinkingBudget(0)
                    .sampling(SamplingParams.greedy());
            if (run.labels) {
                request.labels(labels.values());
            } else {
                request.maxTokens(longestLabel);
            }
            futures.add(engine.submit(request.build(), Long.MAX_VALUE));
        }
        return futures;
    }

    /** Conversations of the instruction and a message of their own each. */
    private List<List<ChatMessage>> conversations(Qwen3Tokenizer tokenizer, String instruction, int count, SplittableRandom random) {
        List<List<ChatMessage>> list = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            list.add(List.of(ChatMessage.system(instruction), ChatMessage.user(text(tokenizer, "", messageTokens, random))));
        }
        return list;
    }

    /** {@code start} followed by random words, cut to {@code tokens} tokens (counted alone, without the chat template). */
    private static String text(Qwen3Tokenizer tokenizer, String start, int tokens, SplittableRandom random) {
        var text = new StringBuilder(start);
        while (tokenizer.encode(text.toString()).length < tokens) {
            for (int i = 0; i < tokens; i++) {
                text.append(WORDS[random.nextInt(WORDS.length)]).append(i % 12 == 11 ? ". " : " ");
            }
        }
        return tokenizer.decode(Arrays.copyOf(tokenizer.encode(text.toString()), tokens)).strip();
    }

    private void print(List<Result> results, int longestLabel) {
        cli.out.printf("%-24s %8s %9s %10s %12s %9s %14s%n", "run", "records", "seconds", "records/s", "prompt tok", "hit rate",
                "KV peak MB");
        for (Result r : results) {
            cli.out.printf(Locale.ROOT, "%-24s %8d %9.1f %10.2f %12.0f %9.2f %14.0f%n", r.run().wireName, r.records(), r.seconds(),
                    r.recordsPerSecond(), r.promptTokens(), r.hitRate(), r.kvPeakBytes() / 1e6);
        }
        Result labels = find(results, Run.LABELS), generate = find(results, Run.GENERATE), cold = find(results, Run.LABELS_NO_PREFIX_CACHE);
        if (labels != null && generate != null) {
            cli.out.printf(Locale.ROOT, "label scoring vs free generation of up to %d tokens: %.2fx records/s%n", longestLabel,
                    labels.recordsPerSecond() / generate.recordsPerSecond());
        }
        if (labels != null && cold != null) {
            cli.out.printf(Locale.ROOT, "prefix cache on vs off: %.2fx records/s (hit rate %.2f)%n",
                    labels.recordsPerSecond() / cold.recordsPerSecond(), labels.hitRate());
        }
        cli.out.printf(Locale.ROOT, "KV cache memory (default for the model): %.0f MB; peak RSS %.0f MB%n",
                results.getFirst().kvCacheBytes() / 1e6, Benchmark.peakRssMb());
        if (json) {
            ObjectNode summary = Qwen3Cli.JSON.createObjectNode();
            summary.put("model", model.location);
            summary.put("threads", threads.threads);
            summary.put("records", records);
            summary.put("instruction_tokens", instructionTokens);
            summary.put("message_tokens", messageTokens);
            summary.put("longest_label_tokens", longestLabel);
            ArrayNode runsJson = summary.putArray("runs");
            for (Result r : results) {
                ObjectNode o = runsJson.addObject();
                o.put("run", r.run().wireName);
                o.put("records", r.records());
                o.put("seconds", r.seconds());
                o.put("records_per_s", r.recordsPerSecond());
                o.put("prompt_tokens_mean", r.promptTokens());
                o.put("prefix_cache_hit_rate", r.hitRate());
                o.put("output_tokens", r.outputTokens());
                o.put("kv_peak_bytes", r.kvPeakBytes());
                o.put("kv_cache_bytes", r.kvCacheBytes());
            }
            summary.put("peak_rss_mb", Benchmark.peakRssMb());
            cli.out.println(summary);
        }
    }

    private static Result find(List<Result> results, Run run) {
        return results.stream().filter(r -> r.run() == run).findFirst().orElse(null);
    }
}
