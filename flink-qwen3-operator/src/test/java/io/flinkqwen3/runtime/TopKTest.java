package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class TopKTest {
    @Test
    void largestFirstWithTiesInIndexOrderAsTorchTopk() {
        float[] x = {9f, 1f, 3f, 3f, 7f, 3f, 7f};
        assertArrayEquals(new int[] {0, 4, 6, 2}, TopK.indices(x, 0, x.length, 4));
        assertArrayEquals(new int[] {3, 5, 1, 2, 4, 0}, TopK.indices(x, 1, x.length - 1, 6), "relative to off");
        assertArrayEquals(new int[] {}, TopK.indices(x, 0, x.length, 0));
    }

    @Test
    void agreesWithAStableSortForEveryK() {
        var random = new SplittableRandom(3);
        for (int n : new int[] {1, 2, 7, 64, 300}) {
            float[] x = new float[n + 5];
            for (int i = 0; i < x.length; i++) {
                x[i] = random.nextInt(10) - 5; // many ties
            }
            int[] sorted = IntStream.range(0, n).boxed()
                    .sorted(Comparator.comparingDouble((Integer i) -> -x[5 + i])).mapToInt(Integer::intValue).toArray();
            for (int k = 0; k <= n; k++) {
                assertArrayEquals(Arrays.copyOf(sorted, k), TopK.indices(x, 5, n, k), "n " + n + " k " + k);
            }
        }
    }
}
