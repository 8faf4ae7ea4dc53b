package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.model.SafetensorsCheckpoint;
import io.flinkqwen3.tensor.Parallel;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The fp32 forward pass against Hugging Face transformers (fixtures/README.md): for every fixture
 * and prompt, top-10 logits at every position and the full last-position logits within 1e-3, and the
 * 24-token greedy continuation with the KV cache equal to the reference.
 */
class Qwen3ModelReferenceTest {
    static final float TOLERANCE = 1e-3f;
    static final Parallel parallel = Fixtures.PARALLEL;

    /** Each checkpoint with the transformers reference it must reproduce: safetensors and the GGUF conversions. */
    static Stream<Arguments> fixtures() {
        return Stream.of(
                Arguments.of(Fixtures.DENSE, Fixtures.DENSE.resolve("reference.safetensors")),
                Arguments.of(Fixtures.MOE, Fixtures.MOE.resolve("reference.safetensors")),
                Arguments.of(Fixtures.YARN, Fixtures.YARN.resolve("reference.safetensors")),
                Arguments.of(Fixtures.GGUF.resolve("qwen3-dense-tiny-bf16.gguf"), Fixtures.DENSE.resolve("reference.safetensors")),
                Arguments.of(Fixtures.GGUF.resolve("qwen3-moe-tiny-bf16.gguf"), Fixtures.MOE.resolve("reference.safetensors")),
                Arguments.of(Fixtures.GGUF.resolve("qwen3-dense-yarn-f32.gguf"), Fixtures.YARN.resolve("reference.safetensors")),
                // llama.cpp's outputs for the Q8_0 file with dequantized weights and f32 activations
                Arguments.of(Fixtures.GGUF.resolve("qwen3-dense-yarn-q8_0.gguf"),
                        Fixtures.GGUF.resolve("qwen3-dense-yarn-q8_0.llamacpp-reference.safetensors")));
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void logitsMatchTransformersAtEveryPosition(Path dir, Path reference) {
        var ref = new Fixtures.Reference(reference);
        try (var model = Qwen3Model.load(Checkpoints.open(dir), parallel)) {
            int vocab = model.config().vocabSize();
            float worst = 0f;
            for (int p = 0; p < ref.prompts(); p++) {
                int[] ids = ref.ints("p" + p + ".ids");
                float[] logits = prefillAll(model, ids);
                int[] topIds = ref.ints("p" + p + ".top10_ids");
                float[] topLogits = ref.floats("p" + p + ".top10_logits");
                for (int pos = 0; pos < ids.length; pos++) {
                    for (int j = 0; j < 10; j++) {
                        float ours = logits[pos * vocab + topIds[pos * 10 + j]];
                        float err = Math.abs(ours - topLogits[pos * 10 + j]);
                        worst = Math.max(worst, err);
                        assertTrue(err <= TOLERANCE, dir.getFileName() + " prompt " + p + " position " + pos
                                + " top-" + j + " id " + topIds[pos * 10 + j] + ": " + ours + " vs " + topLogits[pos * 10 + j]);
                    }
                }
                float[] last = ref.floats("p" + p + ".last_logits");
                int lastOff = (ids.length - 1) * vocab;
                for (int v = 0; v < vocab; v++) {
                    float err = Math.abs(logits[lastOff + v] - last[v]);
                    worst = Math.max(worst, err);
                    assertTrue(err <= TOLERANCE, dir.getFileName() + " prompt " + p + " last logits id " + v
                            + ": " + logits[lastOff + v] + " vs " + last[v]);
                }
            }
            System.out.printf("%s: worst logit error %.3g over %d prompts%n", dir.getFileName(), worst, ref.prompts());
        }
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void greedyContinuationWithKvCacheMatches(Path dir, Path reference) {
        var ref = new Fixtures.Reference(reference);
        try (var model = Qwen3Model.load(Checkpoints.open(dir), parallel)) {
            int vocab = model.config().vocabSize();
            for (int p = 0; p < ref.prompts(); p++) {
                int[] ids = ref.ints("p" + p + ".ids");
                int[] expected = ref.ints("p" + p + ".greedy");
                KvCache cache = model.newCache(ids.length + expected.length);
                float[] logits = model.prefill(ids, cache, false, ForwardObserver.NONE);
                int[] produced = new int[expected.length];
                for (int step = 0; step < expected.length; step++) {
                    int next = argmax(logits, 0, vocab);
                    produced[step] = next;
                    logits = model.forward(new int[] {next}, new int[] {cache.length()}, new KvCache[] {cache},
                            new int[] {0}, ForwardObserver.NONE);
                }
                assertArrayEquals(expected, produced, dir.getFileName() + " prompt " + p + " greedy continuation");
            }
        }
    }

    @ParameterizedTest
    @MethodSource("safetensorsFixtures")
    void hiddenStatesAndRouterLogitsMatchForPromptZero(Path dir) {
        var ref = new Fixtures.Reference(dir.resolve("reference.safetensors"));
        try (var model = Qwen3Model.load(SafetensorsCheckpoint.open(dir), parallel)) {
            int[] ids = ref.ints("p0.ids");
            var seen = new java.util.HashMap<String, float[]>();
            var observer = new ForwardObserver() {
                @Override
                public void hiddenState(int layer, float[] hidden, int tokens, int width) {
                    seen.put("p0.hidden." + layer, hidden.clone());
                }

                @Override
                public void routerLogits(int layer, float[] logits, int tokens, int experts) {
                    seen.put("p0.router_logits." + layer, logits.clone());
                }
            };
            prefillAll(model, ids, observer);
            int checked = 0;
            for (var e : seen.entrySet()) {
                if (!ref.has(e.getKey())) {
                    continue;
                }
                float[] expected = ref.floats(e.getKey());
                assertEquals(expected.length, e.getValue().length, e.getKey());
                for (int i = 0; i < expected.length; i++) {
                    float tol = 1e-3f * Math.max(1f, Math.abs(expected[i]));
                    assertEquals(expected[i], e.getValue()[i], tol, e.getKey() + " element " + i);
                }
                checked++;
            }
            assertEquals(model.config().numLayers() + 1 + (model.config().isMoe() ? model.config().numLayers() : 0), checked,
                    "hidden states (and router logits) compared");
        }
    }

    static Stream<Path> safetensorsFixtures() {
        return Stream.of(Fixtures.DENSE, Fixtures.MOE, Fixtures.YARN);
    }

    static float[] prefillAll(Qwen3Model model, int[] ids) {
        return prefillAll(model, ids, ForwardObserver.NONE);
    }

    static float[] prefillAll(Qwen3Model model, int[] ids, ForwardObserver observer) {
        return model.prefill(ids, model.newCache(ids.length), true, observer);
    }

    static int argmax(float[] x, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[off + i] > x[off + best]) {
                best = i;
            }
        }
        return best;
    }
}
