package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.tensor.Parallel;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** One forward pass over several sequences of different lengths equals running each alone (within 1e-4). */
class BatchedForwardTest {
    @ParameterizedTest
    @ValueSource(strings = {"qwen3-dense-tiny", "qwen3-moe-tiny"})
    void batchedDecodeAndPrefillEqualSequentialRuns(String fixture) {
        Path dir = Fixtures.FIXTURES.resolve(fixture);
        var ref = new Fixtures.Reference(dir.resolve("reference.safetensors"));
        try (var parallel = new Parallel(2); var model = Qwen3Model.load(Checkpoints.open(dir), parallel)) {
            int vocab = model.config().vocabSize();
            int n = 4;
            int[][] prompts = new int[n][];
            float[][] alone = new float[n][];
            KvCache[] caches = new KvCache[n];
            for (int s = 0; s < n; s++) {
                prompts[s] = ref.ints("p" + s + ".ids");
                caches[s] = model.newCache(512);
                // alone: prefill, then one decode step with the greedy token
                float[] prefill = Qwen3ModelReferenceTest.prefillAll(model, prompts[s]);
                int next = Sampler.argmax(prefill, (prompts[s].length - 1) * vocab, vocab);
                KvCache own = model.newCache(512);
                model.prefill(prompts[s], own, false, ForwardObserver.NONE);
                alone[s] = model.prefill(new int[] {next}, own, false, ForwardObserver.NONE);
            }
            // together: one batched prefill of all prompts, then one batched decode step
            int total = Arrays.stream(prompts).mapToInt(p -> p.length).sum();
            int[] tokens = new int[total], positions = new int[total], lastRows = new int[n];
            KvCache[] owners = new KvCache[total];
            int t = 0;
            for (int s = 0; s < n; s++) {
                for (int i = 0; i < prompts[s].length; i++, t++) {
                    tokens[t] = prompts[s][i];
                    positions[t] = i;
                    owners[t] = caches[s];
                }
                lastRows[s] = t - 1;
            }
            float[] prefill = model.forward(tokens, positions, owners, lastRows, ForwardObserver.NONE);
            int[] next = new int[n], nextPos = new int[n], rows = new int[n];
            for (int s = 0; s < n; s++) {
                next[s] = Sampler.argmax(prefill, s * vocab, vocab);
                nextPos[s] = prompts[s].length;
                rows[s] = s;
            }
            float[] together = model.forward(next, nextPos, caches, rows, ForwardObserver.NONE);
            for (int s = 0; s < n; s++) {
                for (int v = 0; v < vocab; v++) {
                    assertEquals(alone[s][v], together[s * vocab + v], 1e-4, fixture + " sequence " + s + " logit " + v);
                }
            }
        }
    }
}
