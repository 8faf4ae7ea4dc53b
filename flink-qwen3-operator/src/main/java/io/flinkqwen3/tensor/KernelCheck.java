package io.flinkqwen3.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A start-up self-check of the packed kernels: each weight type's single-row and batched matmul on
 * a cache-resident matrix must reach a tenth of the rate it has on the machines we measured
 * (relative to this machine's own FMA peak). A kernel far below that runs the Vector API's Java
 * fallback (an operation C2 does not intrinsify on this CPU, or the JIT disabled) and would make
 * inference 10-100x slower without failing: this check turns that into a message.
 */
public final class KernelCheck {
    /**
     * Expected share of the single-thread FMA peak, measured on Zen 4 and Xeon (AVX-512) with
     * 1024x1024 matrices in L2/L3: single rows 30-45% (bf16 25%), batches of 16 55-90%.
     */
    private static final double SINGLE_ROW_SHARE = 0.25, BATCH_SHARE = 0.5;
    /** The least fp32 FMA rate of one thread that compiled vector code gives on any CPU we support. */
    private static final double MIN_PEAK_FLOPS = 4e9;
    /** How far below the expected rate a kernel may fall before it is reported. */
    private static final double TOLERANCE = 10;
    /**
     * How long a slow kernel is warmed and timed again before it counts as slow. A kernel that C1
     * cannot compile (PackedInt8.matvec8: "out of virtual registers") runs interpreted until C2
     * compiles it, and behind a long C2 queue (a test suite's JVM, a busy machine) three rounds of
     * ~3 s did not always suffice (Q8_0 batch 14 once timed at 1.22 GFLOP/s).
     */
    private static final long WARM_NANOS = 30_000_000_000L;

    private KernelCheck() {}

    /** One finding: the kernel (type null: the FMA peak itself), its rate and the rate expected of it, in GFLOP/s. */
    public record Slow(DType type, int batch, double gflops, double expectedGflops) {
        @Override
        public String toString() {
            if (type == null) {
                return String.format("vector FMA rate %.2f GFLOP/s on one thread, expected more than %.0f: the JIT does not compile"
                        + " Vector API code (is C2 disabled, e.g. -XX:TieredStopAtLevel=1?)", gflops, expectedGflops);
            }
            // a busy machine (another process on the cores) can keep a kernel in C2's queue through the whole warm-up
            return String.format("%s matmul at batch %d runs at %.2f GFLOP/s, expected about %.1f: the Vector API falls back to"
                    + " Java code on this CPU/JVM (check that --add-modules jdk.incubator.vector is set and the JIT is enabled),"
                    + " or the JIT had not compiled it yet because other processes kept the cores busy at start-up (then it"
                    + " passes: `qwen3 bench` on an idle machine shows the real rate)", type, batch, gflops, expectedGflops);
        }
    }

    /** The background check: null until it starts, then done when it has reported. */
    private static java.util.concurrent.CompletableFuture<Void> background;

    /**
     * Runs {@link #slowKernels()} once per JVM on a background thread (it takes about five seconds of
     * one core) and hands each finding to {@code report}.
     */
    public static synchronized void checkOnceInBackground(java.util.function.Consumer<Slow> report) {
        if (background == null) {
            background = new java.util.concurrent.CompletableFuture<>();
            Thread.ofPlatform().daemon().name("qwen3-kernel-check").start(() -> {
                try {
                    slowKernels().forEach(report);
                } finally {
                    background.complete(null);
                }
            });
        }
    }

    /**
     * Completes when the background check has ended (at once when none started): its test matrices,
     * a few MB of mapped memory, are released by then.
     */
    public static synchronized java.util.concurrent.CompletableFuture<Void> background() {
        return background == null ? java.util.concurrent.CompletableFuture.completedFuture(null) : background;
    }

    /** The packed kernels that run more than 10x below their expected rate on one thread (empty when all is well). */
    public static List<Slow> slowKernels() {
        List<Slow> slow = new ArrayList<>();
        try (Parallel one = new Parallel(1); Arena arena = Arena.ofShared()) {
            double peak = Kernels.peakFlops(one);
            if (peak < MIN_PEAK_FLOPS) { // every x86-64 core with AVX2 does > 30 GFLOP/s: vector code is not compiled at all
                slow.add(new Slow(null, 0, peak / 1e9, MIN_PEAK_FLOPS / 1e9));
                return slow; // every kernel would be as slow, each after WARM_NANOS
            }
            var random = new SplittableRandom(7);
            for (DType type : new DType[] {DType.F32, DType.F16, DType.BF16, DType.Q8_0, DType.Q4_0, DType.Q4_K}) {
                // four and five 32-weight blocks: every branch of a kernel is taken (the int8 one-row pass: a tail
                // after its four streams or none) while C2 profiles it, so that the large matrix meets no branch
                // compiled as never taken (an uncommon trap, then Java fallback code until C2 compiles it again)
                int blockCols = type.blockElements() == 256 ? 256 : 32;
                Matrix[] small = {randomPacked(type, 64, 4 * blockCols, random, arena, one),
                        randomPacked(type, 64, 5 * blockCols, random, arena, one)};
                Matrix large = randomPacked(type, 1024, 1024, random, arena, one);
                // 14: the streamed types' eight- (PackedMatrix.EIGHT_ROW_PASSES), four- and two-row passes; F32's tiles
                for (int batch : new int[] {1, 14}) {
                    // enough calls on small matrices for C2 to compile the kernel (interpreted or C1-compiled,
                    // Vector API code runs the Java fallback), then the rate on a larger one; on a busy machine C2's
                    // queue can hold a kernel past the warm-up, so a slow one is warmed and timed again, for up to WARM_NANOS
                    double expected = peak / 1e9 * (batch == 1 ? SINGLE_ROW_SHARE : BATCH_SHARE), gflops = 0;
                    long warmStart = System.nanoTime();
                    while (gflops < expected / TOLERANCE && System.nanoTime() - warmStart < WARM_NANOS) {
                        for (int round = 0; round < 4; round++) {
                            rate(small[round % 2], batch, one, 5_000, 750_000_000L);
                        }
                        gflops = rate(large, batch, one, 50, 300_000_000L) / 1e9;
                    }
                    if (gflops < expected / TOLERANCE) {
                        slow.add(new Slow(type, batch, gflops, expected));
                    }
                }
            }
        }
        return slow;
    }

    private static Matrix randomPacked(DType type, int rows, int cols, SplittableRandom random, Arena arena, Parallel parallel) {
        MemorySegment data = arena.allocate(type.byteSize((long) rows * cols), 64);
        for (long i = 0; i < data.byteSize(); i += 2) {
            // small f16/bf16 values and scales; any bit pattern is a valid quant
            data.set(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (0x2000 | random.nextInt(0x1000)));
        }
        return PackedMatrix.pack(Matrix.of(type, data, rows, cols), parallel, arena);
    }

    /** Best flop/s of up to {@code calls} calls, stopping after {@code nanos}. */
    private static double rate(Matrix m, int batch, Parallel parallel, int calls, long nanos) {
        float[] x = new float[batch * m.cols()], out = new float[batch * m.rows()];
        java.util.Arrays.fill(x, 0.5f);
        double best = 0;
        long deadline = System.nanoTime() + nanos;
        for (int call = 0; call < calls && System.nanoTime() < deadline; call++) {
            long t = System.nanoTime();
            m.matmul(x, batch, out, parallel);
            best = Math.max(best, 2.0 * m.rows() * m.cols() * batch / ((System.nanoTime() - t) / 1e9));
        }
        return best;
    }
}
