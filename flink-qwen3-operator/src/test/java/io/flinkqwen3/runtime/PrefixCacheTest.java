package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The KV cache's numbers and budget on the fixtures: logits after a prefix found in the prefix
 * cache against a fresh prefill (1e-4, fp32 and bf16 KV alike); bf16 KV against fp32 KV and the
 * transformers references ({@link #BF16_KV_TOLERANCE}); requests that do not fit the KV cache
 * memory wait and all complete.
 */
class PrefixCacheTest {
    /**
     * How far bf16 keys and values move logits, in logit units: each element keeps 8 significant
     * bits (relative rounding error up to 2^-9). Measured worst: 0.106 on qwen3-dense-tiny (logits
     * up to 26), 0.03 on qwen3-moe-tiny, 0.02 on qwen3-dense-yarn; fp32 KV is within 1.4e-5 of the
     * references, so the bound holds against both.
     */
    static final double BF16_KV_TOLERANCE = 0.15;

    @ParameterizedTest
    @EnumSource(KvBlockPool.Precision.class)
    void logitsAfterACachedPrefixEqualThoseWithout(KvBlockPool.Precision precision) {
        try (var model = Qwen3Model.load(Checkpoints.open(Fixtures.DENSE), Fixtures.PARALLEL)) {
            int vocab = model.config().vocabSize(), b = KvBlockPool.BLOCK_TOKENS;
            int[] prompt = new int[2 * b + 21];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = 1000 + (i * 7919) % 50000;
            }
            float[] fresh = model.prefill(prompt, model.newCache(prompt.length, precision), false, ForwardObserver.NONE);
            var pool = KvBlockPool.of(model.config(), precision, 8L * b * KvBlockPool.bytesPerToken(model.config(), precision), true);
            try (KvCache first = pool.open(prompt, prompt.length, 0)) {
                model.prefill(prompt, first, false, ForwardObserver.NONE);
            }
            int[] other = prompt.clone();
            other[other.length - 1] = 42; // the same two whole blocks, another ending
            try (KvCache reused = pool.open(prompt, prompt.length, 0); KvCache second = pool.open(other, other.length, 0)) {
                assertEquals(2 * b, reused.length(), "two whole blocks found in the prefix cache");
                // only the 21 tokens after the cached blocks run; with bf16 KV they read the same rounded prefix
                float[] cached = model.prefill(Arrays.copyOfRange(prompt, 2 * b, prompt.length), reused, false, ForwardObserver.NONE);
                for (int v = 0; v < vocab; v++) {
                    assertEquals(fresh[v], cached[v], 1e-4, "logit " + v);
                }
                assertEquals(2 * b, second.length());
            }
            assertEquals(4 * b / (3.0 * prompt.length), pool.hitRate(), 1e-9, "2 of 3 lookups found 2 blocks each");
        }
    }

    static Stream<Path> fixtures() {
        return Stream.of(Fixtures.DENSE, Fixtures.MOE, Fixtures.YARN);
    }

    /**
     * Every position's logits with bf16 KV against fp32 KV, and the top-10 at every position and the
     * full last position against transformers, within {@link #BF16_KV_TOLERANCE}. In an MoE model the
     * rounding may tip a router whose top-k gap is tinier than it (the fixture's smallest gap is 5e-5):
     * that token then runs other experts, which is a different computation rather than an error, and
     * the positions from the first such token on are left out (at most a tenth of them).
     */
    @ParameterizedTest
    @MethodSource("fixtures")
    void bf16KvLogitsStayWithinTheStatedToleranceOfFp32KvAndTransformers(Path dir) {
        var ref = new Fixtures.Reference(dir.resolve("reference.safetensors"));
        try (var model = Qwen3Model.load(Checkpoints.open(dir), Fixtures.PARALLEL)) {
            int vocab = model.config().vocabSize(), topK = Math.max(1, model.config().numExpertsPerTok());
            double worst = 0;
            int compared = 0, positions = 0;
            for (int p = 0; p < ref.prompts(); p++) {
                int[] ids = ref.ints("p" + p + ".ids");
                var routing32 = new Routing(topK);
                var routing16 = new Routing(topK);
                float[] f32 = model.prefill(ids, model.newCache(ids.length, KvBlockPool.Precision.F32), true, routing32);
                float[] bf16 = model.prefill(ids, model.newCache(ids.length, KvBlockPool.Precision.BF16), true, routing16);
                int end = routing16.firstDifference(routing32, ids.length); // causal: earlier positions cannot see it
                int[] topIds = ref.ints("p" + p + ".top10_ids");
                float[] topLogits = ref.floats("p" + p + ".top10_logits");
                for (int pos = 0; pos < end; pos++) {
                    for (int v = 0; v < vocab; v++) {
                        worst = Math.max(worst, check(bf16[pos * vocab + v], f32[pos * vocab + v], dir, p, pos, v, "fp32 KV"));
                    }
                    for (int j = 0; j < 10; j++) {
                        int v = topIds[pos * 10 + j];
                        worst = Math.max(worst, check(bf16[pos * vocab + v], topLogits[pos * 10 + j], dir, p, pos, v, "transformers"));
                    }
                }
                if (end == ids.length) {
                    float[] last = ref.floats("p" + p + ".last_logits");
                    for (int v = 0; v < vocab; v++) {
                        worst = Math.max(worst, check(bf16[(end - 1) * vocab + v], last[v], dir, p, end - 1, v, "transformers"));
                    }
                }
                compared += end;
                positions += ids.length;
            }
            assertTrue(compared >= 0.9 * positions, compared + " of " + positions + " positions before a token routed differently");
            System.out.printf("%s: bf16 KV logits within %.3g of fp32 KV and transformers at %d of %d positions%n", dir.getFileName(),
                    worst, compared, positions);
        }
    }

    private static double check(float bf16, float expected, Path dir, int prompt, int position, int id, String against) {
        double error = Math.abs(bf16 - expected);
        if (!(error <= BF16_KV_TOLERANCE)) {
            throw new AssertionError(dir.getFileName() + " prompt " + prompt + " position " + position + " logit " + id + ": bf16 KV "
                    + bf16 + " vs " + against + " " + expected);
        }
        return error;
    }

    /** The top-k experts each token of a forward pass was routed to, per MoE layer (none for a dense model). */
    private static final class Routing implements ForwardObserver {
        private final int topK;
        private final List<int[][]> layers = new ArrayList<>(); // [layer][token]: sorted expert ids

        Routing(int topK) {
            this.topK = topK;
        }

        @Override
        public void routerLogits(int layer, float[] logits, int tokens, int experts) {
            int[][] chosen = new int[tokens][];
            for (int t = 0; t < tokens; t++) {
                chosen[t] = TopK.indices(logits, t * experts, experts, topK);
                Arrays.sort(chosen[t]);
            }
            layers.add(chosen);
        }

        /** The first token routed differently from {@code other} in some layer, else {@code tokens}. */
        int firstDifference(Routing other, int tokens) {
            for (int t = 0; t < tokens; t++) {
                for (int l = 0; l < layers.size(); l++) {
                    if (!Arrays.equals(layers.get(l)[t], other.layers.get(l)[t])) {
                        return t;
                    }
                }
            }
            return tokens;
        }
    }

    /**
     * Requests with a common prefix of two blocks submitted together, one prompt per step: the first
     * writes the prefix, the others take it up before their own prompt runs (not only those admitted
     * after it was written) and get the tokens they get alone.
     */
    @Test
    void requestsAdmittedTogetherShareThePrefixTheFirstOneWrites() {
        int b = KvBlockPool.BLOCK_TOKENS, n = 5;
        var options = new EngineOptions(2, 8, 2 * b + 8, 0).withKvCache(0, KvBlockPool.Precision.F32, true);
        try (var engine = Qwen3Engine.open(Fixtures.DENSE.toString(), options)) {
            List<GenerationRequest> requests = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                int[] prompt = new int[2 * b + 8];
                for (int i = 0; i < prompt.length; i++) {
                    prompt[i] = i < 2 * b ? 700 + i : 3000 + 31 * r + i;
                }
                requests.add(GenerationRequest.builder().promptTokens(prompt).maxTokens(4).sampling(SamplingParams.greedy()).build());
            }
            long hitsBefore = engine.metrics().prefixCacheHitTokens();
            List<CompletableFuture<GenerationResult>> together = new ArrayList<>();
            for (var request : requests) {
                together.add(engine.submit(request, Long.MAX_VALUE));
            }
            together.forEach(CompletableFuture::join);
            assertEquals((n - 1) * 2L * b, engine.metrics().prefixCacheHitTokens() - hitsBefore, "all but the first found the prefix");
            for (int r = 0; r < n; r++) {
                assertArrayEquals(engine.generate(requests.get(r)).outputTokens(), together.get(r).join().outputTokens(), "request " + r);
            }
        }
    }

    /**
     * An engine whose KV cache holds 4 blocks and 10 requests of 2 blocks each (their first block
     * shared): they cannot all run at once, so most wait for blocks to come free; none fails, and
     * each gets the tokens it gets alone. Their shared block is found in the prefix cache.
     */
    @Test
    void requestsThatDoNotFitTheKvCacheMemoryWaitAndAllComplete() {
        long bytesPerToken = KvBlockPool.bytesPerToken(ModelConfig.read(Fixtures.DENSE.resolve("config.json")), KvBlockPool.Precision.F32);
        var options = new EngineOptions(2, 8, 512, 0)
                .withKvCache(4L * KvBlockPool.BLOCK_TOKENS * bytesPerToken, KvBlockPool.Precision.F32, true);
        try (var engine = Qwen3Engine.open(Fixtures.DENSE.toString(), options)) {
            assertEquals(4, engine.metrics().kvBlocks());
            List<GenerationRequest> requests = new ArrayList<>();
            for (int r = 0; r < 10; r++) {
                int[] prompt = new int[KvBlockPool.BLOCK_TOKENS + 6];
                for (int i = 0; i < prompt.length; i++) {
                    prompt[i] = i < KvBlockPool.BLOCK_TOKENS ? 500 + i : 2000 + 17 * r + i;
                }
                requests.add(GenerationRequest.builder().promptTokens(prompt).maxTokens(24).sampling(SamplingParams.greedy()).build());
            }
            List<CompletableFuture<GenerationResult>> together = new ArrayList<>();
            for (var request : requests) {
                together.add(engine.submit(request, Long.MAX_VALUE));
            }
            for (int r = 0; r < requests.size(); r++) {
                GenerationResult batched = together.get(r).join();
                assertEquals(24, batched.outputTokens().length, "request " + r);
                assertArrayEquals(engine.generate(requests.get(r)).outputTokens(), batched.outputTokens(), "request " + r);
            }
            assertEquals(0, engine.metrics().kvBlocksInUse());
            assertTrue(engine.metrics().prefixCacheHitRate() > 0.5, "hit rate " + engine.metrics().prefixCacheHitRate());
        }
    }
}
