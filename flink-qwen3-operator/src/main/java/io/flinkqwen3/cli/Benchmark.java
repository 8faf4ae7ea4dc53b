package io.flinkqwen3.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flinkqwen3.model.Checkpoint;
import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.model.ModelLocator;
import io.flinkqwen3.model.QuantizedCheckpoint;
import io.flinkqwen3.model.Tensor;
import io.flinkqwen3.runtime.ExpertShardLoad;
import io.flinkqwen3.runtime.ForwardObserver;
import io.flinkqwen3.runtime.KvBlockPool;
import io.flinkqwen3.runtime.KvCache;
import io.flinkqwen3.runtime.Qwen3Model;
import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Parallel;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * {@code qwen3 bench}: prefill tokens/s (one prompt of N tokens in one batch, like llama-bench
 * pp512), decode tokens/s for B sequences advancing together (total over sequences; B=1 is
 * llama-bench tg128), medians over repetitions after a warm-up, peak memory, and each figure as a
 * ratio to its ceiling: the read bandwidth measured here for decode (weights read per step; or
 * {@code --bandwidth-gbs}) and the measured vector FMA rate of this machine (independent FMA chains)
 * for prefill. For MoE models also how decode's routed tokens fell on the expert shards.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Prefill and decode tokens/s (medians over --reps after a warm-up), each as a share of its ceiling: "
                + "the measured DRAM read bandwidth for decode, the measured fp32 FMA peak for prefill.",
                "With --json it ends with one JSON object (prefill_tokens_per_s, decode_tokens_per_s: {\"1\": .., \"16\": ..}, ...)."})
final class Benchmark implements Callable<Integer> {
    /** One timed decode run: total tokens/s and the expert shards' load summed over its steps. */
    record DecodeRun(double tokensPerSecond, ExpertShardLoad shards) {}

    record Stats(double median, double min, double max) {
        static Stats of(List<Double> values) {
            double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            double median = v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
            return new Stats(median, v[0], v[v.length - 1]);
        }
    }

    @ParentCommand
    Qwen3Cli cli;
    @Spec
    CommandSpec spec;
    @Mixin
    Qwen3Cli.ModelOption modelOption;
    @Mixin
    Qwen3Cli.QuantizeOption quantize;
    @Mixin
    Qwen3Cli.ThreadsOption threadsOption;
    @Option(names = "--prompt", paramLabel = "N", defaultValue = "512", description = "Prompt tokens of the prefill test (default: ${DEFAULT-VALUE}).")
    int promptTokens;
    @Option(names = "--gen", paramLabel = "N", defaultValue = "128", description = "Decode steps per test (default: ${DEFAULT-VALUE}).")
    int gen;
    @Option(names = "--batch", paramLabel = "SIZES", defaultValue = "1,4,16", converter = Qwen3Cli.IntsConverter.class,
            description = "Sequences decoding together, comma-separated, 1 to 1024 each (default: ${DEFAULT-VALUE}).")
    Qwen3Cli.Ints batchSizes;
    @Option(names = "--reps", paramLabel = "N", defaultValue = "3", description = "Timed repetitions (default: ${DEFAULT-VALUE}).")
    int reps;
    @Option(names = "--expert-shards", paramLabel = "N", defaultValue = "0",
            description = "MoE: shards the experts of each layer are split into (default: one per thread).")
    int expertShards;
    @Option(names = "--bandwidth-gbs", paramLabel = "GB/s", description = "Decode's ceiling (default: measured here).")
    Double bandwidthGbs;
    @Option(names = "--json", description = "End with one JSON object of the results.")
    boolean json;

    @Override
    public Integer call() {
        run(cli.out);
        return 0;
    }

    void run(PrintStream out) {
        int threads = threadsOption.threads;
        Qwen3Cli.inRange(spec, "--prompt", promptTokens, 1, 1 << 20, "a token count from 1 to " + (1 << 20));
        Qwen3Cli.inRange(spec, "--gen", gen, 1, 1 << 20, "a step count from 1 to " + (1 << 20));
        Qwen3Cli.inRange(spec, "--reps", reps, 1, 1000, "a count from 1 to 1000");
        Qwen3Cli.inRange(spec, "--expert-shards", expertShards, 0, Qwen3Model.MAX_EXPERT_SHARDS,
                "0 (one per thread) or a shard count up to " + Qwen3Model.MAX_EXPERT_SHARDS);
        int[] batches = batchSizes.values();
        for (int b : batches) {
            Qwen3Cli.inRange(spec, "--batch", b, 1, 1024, "comma-separated batch sizes from 1 to 1024 (e.g. 1,4,16)");
        }
        if (bandwidthGbs != null && !(bandwidthGbs > 0 && bandwidthGbs < Double.POSITIVE_INFINITY)) {
            throw new ParameterException(spec.commandLine(), "--bandwidth-gbs expects a positive number of GB/s, got " + bandwidthGbs);
        }
        String location = modelOption.location;
        String quantizeName = quantize.type == null ? null : quantize.type.name().toLowerCase(java.util.Locale.ROOT);
        long loadStart = System.nanoTime();
        try (var parallel = new Parallel(threads)) {
            Checkpoint checkpoint = Checkpoints.open(ModelLocator.resolve(location));
            int context = checkpoint.config().maxPositionEmbeddings();
            if (promptTokens > context || gen > context) { // before the load: each prefill and decode run starts a sequence
                checkpoint.close();
                throw new ParameterException(spec.commandLine(), String.format(
                        "--prompt %d and --gen %d must each fit the model's context of %d positions", promptTokens, gen, context));
            }
            if (quantize.type != null) {
                checkpoint = new QuantizedCheckpoint(checkpoint, quantize.type, parallel);
            }
            try (var model = Qwen3Model.load(checkpoint, parallel, expertShards)) {
                double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
                ModelConfig config = model.config();
                cli.err.printf("bench: %s loaded in %.1f s (%s, %d layers%s), %d threads%s%n", location, loadSeconds,
                        config.modelType(), config.numLayers(), quantize.type != null ? ", " + quantizeName : "", threads,
                        config.isMoe() ? ", " + model.expertShards() + " expert shards" : "");
                var random = new SplittableRandom(1);
                int vocabForInputs = Math.min(config.vocabSize(), 150_000);

                for (var slow : io.flinkqwen3.tensor.KernelCheck.slowKernels()) {
                    cli.err.println("bench: WARNING " + slow);
                }
                cli.err.println("bench: warm-up");
                prefill(model, randomTokens(random, Math.min(promptTokens, 64), vocabForInputs), promptTokens + gen);
                decode(model, 1, 32, random, vocabForInputs);
                decode(model, 4, 8, random, vocabForInputs);

                List<Double> prefillRates = new ArrayList<>();
                for (int r = 0; r < reps; r++) {
                    int[] prompt = randomTokens(random, promptTokens, vocabForInputs);
                    long t = System.nanoTime();
                    prefill(model, prompt, promptTokens);
                    prefillRates.add(promptTokens / ((System.nanoTime() - t) / 1e9));
                    cli.err.printf("bench: prefill %d tokens: %.1f tok/s%n", promptTokens, prefillRates.getLast());
                }
                Stats prefill = Stats.of(prefillRates);

                double bytesPerToken = weightBytesPerDecodedToken(model.checkpoint(), config);
                // prefill computes logits for the last position only; a decode step for every sequence
                double prefillFlopsPerToken = 2 * layerParameters(config);
                double flopsPerToken = prefillFlopsPerToken + 2.0 * config.hiddenSize() * config.vocabSize();
                double fmaRate = Kernels.peakFlops(parallel);
                double bandwidth = bandwidthGbs != null ? bandwidthGbs * 1e9
                        : Kernels.readBandwidth(parallel);

                ObjectNode summary = ModelConfig.JSON.createObjectNode();
                summary.put("model", location);
                summary.put("quantize", quantizeName);
                summary.put("threads", threads);
                summary.put("load_seconds", loadSeconds);
                summary.put("prefill_tokens_per_s", prefill.median());
                summary.putArray("prefill_min_max").add(prefill.min()).add(prefill.max());
                summary.put("prefill_compute_ceiling_tokens_per_s", fmaRate / prefillFlopsPerToken);
                summary.put("prefill_ratio_to_compute_ceiling", prefill.median() / (fmaRate / prefillFlopsPerToken));
                ObjectNode decodeJson = summary.putObject("decode_tokens_per_s");
                ObjectNode decodeRange = summary.putObject("decode_min_max");
                ObjectNode decodeRatio = summary.putObject("decode_ratio_to_bandwidth_ceiling");
                ObjectNode decodeComputeRatio = summary.putObject("decode_ratio_to_compute_ceiling");
                ObjectNode shardImbalance = summary.putObject("decode_expert_shard_imbalance");
                out.printf("%-28s %12s %12s %12s %10s %10s%n", "test", "tok/s", "min", "max", "of bw", "of fma");
                out.printf("%-28s %12.1f %12.1f %12.1f %10s %9.0f%%%n", "prefill pp" + promptTokens, prefill.median(), prefill.min(),
                        prefill.max(), "-", 100 * prefill.median() / (fmaRate / prefillFlopsPerToken));
                for (int b : batches) {
                    List<Double> rates = new ArrayList<>();
                    var shards = ExpertShardLoad.NONE;
                    for (int r = 0; r < reps; r++) {
                        DecodeRun run = decode(model, b, gen, random, vocabForInputs);
                        rates.add(run.tokensPerSecond());
                        shards = shards.plus(run.shards());
                        cli.err.printf("bench: decode batch %d: %.1f tok/s%s%n", b, run.tokensPerSecond(),
                                config.isMoe() ? "; expert shards: " + run.shards() : "");
                    }
                    if (config.isMoe()) {
                        shardImbalance.put(String.valueOf(b), shards.imbalance());
                    }
                    Stats s = Stats.of(rates);
                    // per step, the weights are read once for all b sequences (MoE: up to b x top-k experts)
                    double ceiling = b * bandwidth / stepBytes(model.checkpoint(), config, b);
                    decodeJson.put(String.valueOf(b), s.median());
                    decodeRange.putArray(String.valueOf(b)).add(s.min()).add(s.max());
                    decodeRatio.put(String.valueOf(b), s.median() / ceiling);
                    decodeComputeRatio.put(String.valueOf(b), s.median() / (fmaRate / flopsPerToken));
                    out.printf("%-28s %12.1f %12.1f %12.1f %9.0f%% %9.0f%%%n", "decode tg" + gen + " x" + b, s.median(), s.min(),
                            s.max(), 100 * s.median() / ceiling, 100 * s.median() / (fmaRate / flopsPerToken));
                }
                summary.put("decode_weight_bytes_per_token", bytesPerToken);
                summary.put("bandwidth_gb_per_s", bandwidth / 1e9);
                summary.put("bandwidth_measured", bandwidthGbs == null);
                summary.put("vector_gflops_measured", fmaRate / 1e9);
                summary.put("peak_rss_mb", peakRssMb());
                out.printf("weights read per decoded token (batch 1): %.1f MB; bandwidth %.0f GB/s -> ceiling %.1f tok/s; "
                                + "vector FMA %.1f GFLOP/s -> prefill ceiling %.1f tok/s; peak RSS %.0f MB%n",
                        bytesPerToken / 1e6, bandwidth / 1e9, bandwidth / bytesPerToken, fmaRate / 1e9, fmaRate / prefillFlopsPerToken,
                        peakRssMb());
                if (json) {
                    out.println(summary);
                }
            }
        }
    }

    static int[] randomTokens(SplittableRandom random, int n, int vocab) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = random.nextInt(vocab);
        }
        return t;
    }

    static void prefill(Qwen3Model model, int[] prompt, int context) {
        model.prefill(prompt, model.newCache(context, KvBlockPool.Precision.BF16), false, ForwardObserver.NONE);
    }

    /** b sequences decoding together from an empty context: total tokens/s and the expert shards' load over the timed steps. */
    static DecodeRun decode(Qwen3Model model, int b, int steps, SplittableRandom random, int vocab) {
        KvCache[] caches = new KvCache[b];
        for (int s = 0; s < b; s++) {
            caches[s] = model.newCache(steps + 1, KvBlockPool.Precision.BF16); // as the engine stores them
        }
        int[] tokens = randomTokens(random, b, vocab);
        int[] rows = new int[b];
        Arrays.setAll(rows, i -> i);
        int[] positions = new int[b];
        var shards = ExpertShardLoad.NONE;
        long t = System.nanoTime();
        for (int step = 0; step < steps; step++) {
            Arrays.fill(positions, step);
            float[] logits = model.forward(tokens, positions, caches, rows, ForwardObserver.NONE);
            shards = shards.plus(model.lastExpertShardLoad());
            for (int s = 0; s < b; s++) {
                tokens[s] = io.flinkqwen3.runtime.Sampler.argmax(logits, s * model.config().vocabSize(), vocab);
            }
        }
        return new DecodeRun((double) b * steps / ((System.nanoTime() - t) / 1e9), shards);
    }

    /**
     * Weight bytes one decode step of b sequences reads: every matrix except the untied token
     * embedding (one row per token), and of the experts the expected share that b tokens route to,
     * 1 - (1 - k/E)^b.
     */
    static double stepBytes(Checkpoint c, ModelConfig config, int b) {
        double bytes = 0, expertBytes = 0;
        for (String name : c.tensorNames()) {
            boolean embedding = name.equals("model.embed_tokens.weight") || name.equals("token_embd.weight");
            Tensor t = embedding && !config.tieWordEmbeddings() ? null : safeTensor(c, name);
            if (t == null) {
                continue;
            }
            if (name.contains(".experts.") || name.contains("_exps")) {
                expertBytes += t.data().byteSize();
            } else {
                bytes += t.data().byteSize();
            }
        }
        if (config.isMoe()) {
            bytes += expertBytes * (1 - Math.pow(1 - config.numExpertsPerTok() / (double) config.numExperts(), b));
        }
        return bytes;
    }

    static double weightBytesPerDecodedToken(Checkpoint c, ModelConfig config) {
        return stepBytes(c, config, 1);
    }

    /** The tensor under the name the checkpoint lists (GGUF names pass through the HF name mapping unchanged). */
    private static Tensor safeTensor(Checkpoint c, String name) {
        try {
            return c.tensor(name);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** Multiply-adds per token in the decoder layers: projections, router and the active experts. */
    static double layerParameters(ModelConfig c) {
        long h = c.hiddenSize();
        long attention = h * c.qDim() * 2L + h * c.kvDim() * 2L;
        long ffn = c.isMoe() ? 3L * h * c.moeIntermediateSize() * c.numExpertsPerTok() + h * c.numExperts()
                : 3L * h * c.intermediateSize();
        return (double) c.numLayers() * (attention + ffn);
    }

    static double peakRssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("\\D", "")) / 1024.0;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux: no peak RSS
        }
        return Double.NaN;
    }
}
