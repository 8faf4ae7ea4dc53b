package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Scores and mixed values over the cache's own layout against plain loops over what was stored. */
class KvCacheTest {
    @ParameterizedTest
    @ValueSource(ints = {128, 24, 8})
    void scoresAndMixedValuesMatchPlainLoops(int headDim) {
        var random = new SplittableRandom(headDim);
        int layers = 2, kvHeads = 3, kvDim = kvHeads * headDim, positions = 150, rows = 8;
        var cache = new KvCache(layers, kvHeads, headDim, 4096);
        float[][][] k = new float[layers][positions][], v = new float[layers][positions][];
        for (int p = 0; p < positions; p++) {
            cache.ensureCapacity(p + 1); // grows several times on the way
            for (int l = 0; l < layers; l++) {
                k[l][p] = random(random, kvDim);
                v[l][p] = random(random, kvDim);
                cache.store(l, p, k[l][p], 0, v[l][p], 0);
            }
        }
        for (int keys : new int[] {1, 17, 64, 65, 100, positions}) {
            int layer = 1, head = 2;
            float[] q = random(random, rows * headDim);
            float[] scores = new float[rows * keys];
            cache.scores(layer, head, q, rows, keys, scores);
            for (int r = 0; r < rows; r++) {
                for (int t = 0; t < keys; t++) {
                    double expected = 0;
                    for (int d = 0; d < headDim; d++) {
                        expected += q[r * headDim + d] * k[layer][t][head * headDim + d];
                    }
                    assertEquals(expected, scores[r * keys + t], 1e-4, "keys " + keys + " score " + r + ", " + t);
                }
            }
            float[] weights = random(random, rows * keys);
            float[] mixed = new float[rows * headDim];
            cache.mixValues(layer, head, weights, rows, keys, mixed);
            for (int r = 0; r < rows; r++) {
                for (int d = 0; d < headDim; d++) {
                    double expected = 0;
                    for (int t = 0; t < keys; t++) {
                        expected += weights[r * keys + t] * v[layer][t][head * headDim + d];
                    }
                    assertEquals(expected, mixed[r * headDim + d], 1e-4, "keys " + keys + " mixed " + r + ", " + d);
                }
            }
        }
    }

    private static float[] random(SplittableRandom random, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (random.nextDouble() * 2 - 1);
        }
        return x;
    }
}
