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

/**
 * {@code qwen3 bench}: prefill tokens/s (one prompt of N tokens in one batch, like llama-bench
 * pp512), decode tokens/s for B sequences advancing together (total over sequences; B=1 is
 * llama-bench tg128), medians over repetitions after a warm-up, peak memory, and each figure as a
 * ratio to its ceiling: the read bandwidth measured here for decode (weights read per step; or
 * {@code --bandwidth-gbs}) and the measured vector FMA rate of this machine (independent FMA chains)
 * for prefill. For MoE models also how decode's routed tokens fell on the expert shards.
 */
final class Benchmark {
    /** One timed decode run: total tokens/s and the expert shards' load summed over its steps. */
    record DecodeRun(double tokensPerSecond, ExpertShardLoad shards) {}

    record Stats(double median, double min, double max) {
        static Stats of(List<Double> values) {
            double[] v = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
            double median = v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
            return new Stats(median, v[0], v[v.length - 1]);
        }
    }

    private Benchmark() {}

    static void run(Args args, PrintStream out) {
        int threads = args.threads();
        int promptTokens = positive(args, "--prompt", 512, 1 << 20);
        int gen = positive(args, "--gen", 128, 1 << 20);
        int reps = positive(args, "--reps", 3, 1000);
        int expertShards = args.intValue("--expert-shards", 0);
        if (expertShards < 0) {
            throw new Args.UsageException("--expert-shards expects 0 (one per thread) or a positive count, got " + expertShards);
        }
        int[] batches = batchSizes(args.get("--batch") == null ? "1,4,16" : args.get("--batch"));
        if (args.has("--bandwidth-gbs") && !(args.floatValue("--bandwidth-gbs", 0f) > 0)) {
            throw new Args.UsageException("--bandwidth-gbs expects a positive number of GB/s, got '" + args.get("--bandwidth-gbs") + "'");
        }
        String location = args.required("--model");
        long loadStart = System.nanoTime();
        try (var parallel = new Parallel(threads)) {
            Checkpoint checkpoint = Checkpoints.open(ModelLocator.resolve(location));
            if (args.has("--quantize")) {
                checkpoint = new QuantizedCheckpoint(checkpoint, QuantizedCheckpoint.parseFormat(args.get("--quantize")), parallel);
            }
            try (var model = Qwen3Model.load(checkpoint, parallel, expertShards)) {
                double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
                ModelConfig config = model.config();
                System.err.printf("bench: %s loaded in %.1f s (%s, %d layers%s), %d threads%s%n", location, loadSeconds,
                        config.modelType(), config.numLayers(), args.has("--quantize") ? ", " + args.get("--quantize") : "", threads,
                        config.isMoe() ? ", " + model.expertShards() + " expert shards" : "");
                var random = new SplittableRandom(1);
                int vocabForInputs = Math.min(config.vocabSize(), 150_000);

                for (var slow : io.flinkqwen3.tensor.KernelCheck.slowKernels()) {
                    System.err.println("bench: WARNING " + slow);
                }
                System.err.println("bench: warm-up");
                prefill(model, randomTokens(random, Math.min(promptTokens, 64), vocabForInputs), promptTokens + gen);
                decode(model, 1, 32, random, vocabForInputs);
                decode(model, 4, 8, random, vocabForInputs);

                List<Double> prefillRates = new ArrayList<>();
                for (int r = 0; r < reps; r++) {
                    int[] prompt = randomTokens(random, promptTokens, vocabForInputs);
                    long t = System.nanoTime();
                    prefill(model, prompt, promptTokens);
                    prefillRates.add(promptTokens / ((System.nanoTime() - t) / 1e9));
                    System.err.printf("bench: prefill %d tokens: %.1f tok/s%n", promptTokens, prefillRates.getLast());
                }
                Stats prefill = Stats.of(prefillRates);

                double bytesPerToken = weightBytesPerDecodedToken(model.checkpoint(), config);
                // prefill computes logits for the last position only; a decode step for every sequence
                double prefillFlopsPerToken = 2 * layerParameters(config);
                double flopsPerToken = prefillFlopsPerToken + 2.0 * config.hiddenSize() * config.vocabSize();
                double fmaRate = Kernels.peakFlops(parallel);
                double bandwidth = args.has("--bandwidth-gbs") ? args.floatValue("--bandwidth-gbs", 0f) * 1e9
                        : Kernels.readBandwidth(parallel);

                ObjectNode json = ModelConfig.JSON.createObjectNode();
                json.put("model", location);
                json.put("quantize", args.has("--quantize") ? args.get("--quantize") : null);
                json.put("threads", threads);
                json.put("load_seconds", loadSeconds);
                json.put("prefill_tokens_per_s", prefill.median());
                json.putArray("prefill_min_max").add(prefill.min()).add(prefill.max());
                json.put("prefill_compute_ceiling_tokens_per_s", fmaRate / prefillFlopsPerToken);
                json.put("prefill_ratio_to_compute_ceiling", prefill.median() / (fmaRate / prefillFlopsPerToken));
                ObjectNode decodeJson = json.putObject("decode_tokens_per_s");
                ObjectNode decodeRange = json.putObject("decode_min_max");
                ObjectNode decodeRatio = json.putObject("decode_ratio_to_bandwidth_ceiling");
                ObjectNode decodeComputeRatio = json.putObject("decode_ratio_to_compute_ceiling");
                ObjectNode shardImbalance = json.putObject("decode_expert_shard_imbalance");
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
                        System.err.printf("bench: decode batch %d: %.1f tok/s%s%n", b, run.tokensPerSecond(),
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
                json.put("decode_weight_bytes_per_token", bytesPerToken);
                json.put("bandwidth_gb_per_s", bandwidth / 1e9);
                json.put("bandwidth_measured", !args.has("--bandwidth-gbs"));
                json.put("vector_gflops_measured", fmaRate / 1e9);
                json.put("peak_rss_mb", peakRssMb());
                out.printf("weights read per decoded token (batch 1): %.1f MB; bandwidth %.0f GB/s -> ceiling %.1f tok/s; "
                                + "vector FMA %.1f GFLOP/s -> prefill ceiling %.1f tok/s; peak RSS %.0f MB%n",
                        bytesPerToken / 1e6, bandwidth / 1e9, bandwidth / bytesPerToken, fmaRate / 1e9, fmaRate / prefillFlopsPerToken,
                        peakRssMb());
                if (args.has("--json")) {
                    out.println(json);
                }
            }
        }
    }

    /** An integer option in [1, max], checked before anything is loaded. */
    private static int positive(Args args, String name, int fallback, int max) {
        int v = args.intValue(name, fallback);
        if (v < 1 || v > max) {
            throw new Args.UsageException(name + " expects an integer from 1 to " + max + ", got " + v);
        }
        return v;
    }

    /** "1,4,16": batch sizes from 1 to 1024. */
    private static int[] batchSizes(String csv) {
        String[] parts = csv.split(",", -1);
        int[] sizes = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                sizes[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                sizes[i] = 0;
            }
            if (sizes[i] < 1 || sizes[i] > 1024) {
                throw new Args.UsageException("--batch expects comma-separated batch sizes from 1 to 1024 (e.g. 1,4,16), got '" + csv + "'");
            }
        }
        return sizes;
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
