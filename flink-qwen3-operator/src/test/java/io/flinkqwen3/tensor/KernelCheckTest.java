package io.flinkqwen3.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The packed kernels compile to vector code here: none runs 10x below the rate it has on the
 * machines we measured, relative to this machine's own FMA peak (a ratio, not a time).
 */
class KernelCheckTest {
    @Test
    void noKernelRunsTheJavaFallback() {
        List<KernelCheck.Slow> slow = KernelCheck.slowKernels();
        assertEquals(List.of(), slow, "kernels far below their expected rate");
    }
}
