package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Scores and mixed values over the block table against plain loops over what was stored (rounded
 * to bf16 first when the cache stores bf16), also for a fork that continues a partial block in a
 * scratch block; the pool's reservations, prefix cache and LRU.
 */
class KvCacheTest {
    @ParameterizedTest
    @CsvSource({"128, F32", "24, F32", "8, F32", "128, BF16", "24, BF16"})
    void scoresAndMixedValuesMatchPlainLoops(int headDim, KvBlockPool.Precision precision) {
        var random = new SplittableRandom(headDim);
        int layers = 2, kvHeads = 3, kvDim = kvHeads * headDim, positions = 149, rows = 8; // 149: the last block ends on an odd position
        long blockBytes = 2L * layers * kvHeads * headDim * KvBlockPool.BLOCK_TOKENS * precision.bytes;
        var pool = new KvBlockPool(layers, kvHeads, headDim, precision, 8 * blockBytes, false);
        KvCache cache = pool.open(new int[0], 7 * KvBlockPool.BLOCK_TOKENS, 1); // one block for a fork
        float[][][] k = new float[layers][positions + 5][], v = new float[layers][positions + 5][];
        for (int p = 0; p < positions; p++) {
            cache.ensureCapacity(p + 1); // takes a block every 64 positions
            for (int l = 0; l < layers; l++) {
                k[l][p] = random(random, kvDim, precision);
                v[l][p] = random(random, kvDim, precision);
                cache.store(l, p, k[l][p], 0, v[l][p], 0);
            }
            cache.written(p, p);
        }
        for (int keys : new int[] {1, 17, 64, 65, 100, positions}) {
            check(cache, k, v, keys, headDim, rows, random);
        }
        // a fork continuing the partial third block: 5 positions in slots 6..10 of a scratch block
        int scratch = cache.takeScratchBlock();
        KvCache fork = cache.fork(scratch, 6, 5);
        assertEquals(positions, fork.length());
        for (int p = positions; p < positions + 5; p++) {
            fork.ensureCapacity(p + 1);
            for (int l = 0; l < layers; l++) {
                k[l][p] = random(random, kvDim, precision);
                v[l][p] = random(random, kvDim, precision);
                fork.store(l, p, k[l][p], 0, v[l][p], 0);
            }
        }
        for (int keys : new int[] {positions + 1, positions + 5}) {
            check(fork, k, v, keys, headDim, rows, random);
        }
        check(cache, k, v, positions, headDim, rows, random); // the parent's own positions are untouched
        cache.releaseScratchBlock(scratch);
        assertEquals(3, pool.blocksInUse());
        cache.close();
        assertEquals(0, pool.blocksInUse());
        assertEquals(8, pool.available());
    }

    private static void check(KvCache cache, float[][][] k, float[][][] v, int keys, int headDim, int rows, SplittableRandom random) {
        int layer = 1, head = 2;
        float[] q = random(random, rows * headDim, KvBlockPool.Precision.F32);
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
        float[] weights = random(random, rows * keys, KvBlockPool.Precision.F32);
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

    @Test
    void prefixBlocksAreSharedCachedAndEvictedLeastRecentlyUsedFirst() {
        int layers = 1, kvHeads = 1, headDim = 4, b = KvBlockPool.BLOCK_TOKENS;
        long blockBytes = 2L * layers * kvHeads * headDim * b * 4;
        var pool = new KvBlockPool(layers, kvHeads, headDim, KvBlockPool.Precision.F32, 4 * blockBytes, true);
        int[] prompt = new int[2 * b + 10];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = i;
        }
        KvCache first = pool.open(prompt, prompt.length + 1, 0);
        assertEquals(0, first.length());
        assertEquals(1, pool.available()); // 3 blocks reserved of 4
        fill(first, prompt);
        assertEquals(3, pool.blocksInUse());
        // a second sequence with the same prompt starts after its two whole blocks
        KvCache second = pool.open(prompt, prompt.length + 1, 0);
        assertEquals(2 * b, second.length());
        assertEquals(3, pool.blocksInUse()); // shared, plus one reserved for its own last block
        assertNull(pool.open(prompt, 3 * b, 1), "4 blocks needed, 1 left: waits");
        assertThrows(IllegalArgumentException.class, () -> pool.open(new int[1], 5 * b, 0), "more than the pool: never");
        second.close();
        first.close();
        assertEquals(0, pool.blocksInUse());
        assertEquals(4, pool.available()); // two cached, two free
        assertEquals(2.0 * b / (2 * prompt.length), pool.hitRate(), 1e-9);
        // a different prompt of 4 blocks takes the free blocks first, then forgets the cached ones
        int[] other = new int[4 * b - 1];
        KvCache third = pool.open(other, 4 * b, 0);
        assertEquals(0, third.length());
        fill(third, other);
        third.close();
        KvCache again = pool.open(prompt, prompt.length + 1, 0);
        assertEquals(0, again.length(), "the cached blocks were reused for the other prompt");
    }

    @Test
    void aSequenceOpenedBeforeItsPrefixWasWrittenTakesItUpLater() {
        int b = KvBlockPool.BLOCK_TOKENS;
        var pool = new KvBlockPool(1, 1, 4, KvBlockPool.Precision.F32, 6 * 2L * 4 * b * 4, true);
        int[] prompt = new int[2 * b + 10];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = i;
        }
        KvCache first = pool.open(prompt, prompt.length + 1, 0);
        KvCache second = pool.open(prompt, prompt.length + 1, 0); // admitted in the same round: nothing cached yet
        assertEquals(0, second.length());
        assertEquals(0, pool.available());
        assertEquals(0, second.adoptCachedPrefix(prompt));
        fill(first, prompt);
        assertEquals(2 * b, second.adoptCachedPrefix(prompt), "the first one's two whole blocks");
        assertEquals(2 * b, second.length());
        assertEquals(2, pool.available(), "two reserved blocks given back");
        assertEquals(0, second.adoptCachedPrefix(prompt), "nothing more to take up");
        fill(second, prompt);
        assertEquals(4, pool.blocksInUse(), "two shared, one last block each");
        first.close();
        second.close();
        assertEquals(6, pool.available());
        assertEquals(2.0 * b / (2 * prompt.length), pool.hitRate(), 1e-9);
    }

    private static void fill(KvCache cache, int[] tokens) {
        float[] zeros = new float[4];
        for (int p = cache.length(); p < tokens.length; p++) {
            cache.ensureCapacity(p + 1);
            cache.store(0, p, zeros, 0, zeros, 0);
            cache.written(p, tokens[p]);
        }
    }

    private static float[] random(SplittableRandom random, int n, KvBlockPool.Precision precision) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (random.nextDouble() * 2 - 1);
            if (precision == KvBlockPool.Precision.BF16) {
                x[i] = Float.intBitsToFloat(KvCache.bf16(x[i]) << 16);
            }
        }
        return x;
    }
}
