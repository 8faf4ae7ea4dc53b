package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Element-wise and reduction kernels over fp32 activations: Vector API main loop, scalar tail.
 * They know nothing of models: offsets and lengths in, results written in place or to out.
 */
public final class Kernels {
    /** The widest float species of this CPU, chosen at run time. */
    public static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    private Kernels() {}

    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        var acc = FloatVector.zero(F);
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            acc = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sum += a[aOff + i] * b[bOff + i];
        }
        return sum;
    }

    /** Dot product of a[aOff..+n) with n floats stored at byte offset bOff of segment b (a KV cache row). */
    public static float dot(float[] a, int aOff, MemorySegment b, long bOff, int n) {
        var acc = FloatVector.zero(F);
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            acc = FloatVector.fromArray(F, a, aOff + i)
                    .fma(FloatVector.fromMemorySegment(F, b, bOff + 4L * i, ByteOrder.LITTLE_ENDIAN), acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sum += a[aOff + i] * b.get(ValueLayout.JAVA_FLOAT_UNALIGNED, bOff + 4L * i);
        }
        return sum;
    }

    /** y[yOff..+n) += a * (n floats at byte offset xOff of segment x). */
    public static void axpy(float a, MemorySegment x, long xOff, float[] y, int yOff, int n) {
        var av = FloatVector.broadcast(F, a);
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            FloatVector.fromMemorySegment(F, x, xOff + 4L * i, ByteOrder.LITTLE_ENDIAN)
                    .fma(av, FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += a * x.get(ValueLayout.JAVA_FLOAT_UNALIGNED, xOff + 4L * i);
        }
    }

    /**
     * Four dot products of w[wOff..+n) with x rows starting at xOff, xOff+n, xOff+2n, xOff+3n; results to
     * out[outIdx + k*outStride]. w is read once for the four.
     */
    public static void dot4(float[] w, int wOff, float[] x, int n, int xOff, float[] out, int outIdx, int outStride) {
        var a = FloatVector.zero(F);
        var b = FloatVector.zero(F);
        var c = FloatVector.zero(F);
        var d = FloatVector.zero(F);
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            var wv = FloatVector.fromArray(F, w, wOff + i);
            a = wv.fma(FloatVector.fromArray(F, x, xOff + i), a);
            b = wv.fma(FloatVector.fromArray(F, x, xOff + n + i), b);
            c = wv.fma(FloatVector.fromArray(F, x, xOff + 2 * n + i), c);
            d = wv.fma(FloatVector.fromArray(F, x, xOff + 3 * n + i), d);
        }
        float sa = a.reduceLanes(VectorOperators.ADD), sb = b.reduceLanes(VectorOperators.ADD);
        float sc = c.reduceLanes(VectorOperators.ADD), sd = d.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sa += w[wOff + i] * x[xOff + i];
            sb += w[wOff + i] * x[xOff + n + i];
            sc += w[wOff + i] * x[xOff + 2 * n + i];
            sd += w[wOff + i] * x[xOff + 3 * n + i];
        }
        out[outIdx] = sa;
        out[outIdx + outStride] = sb;
        out[outIdx + 2 * outStride] = sc;
        out[outIdx + 3 * outStride] = sd;
    }

    /**
     * A 4x4 register tile: the dot products of four weight rows (w at wOff, wOff+n, ...) with four
     * input rows (x at xOff, xOff+n, ...); result (i, j) goes to out[outIdx + j*outStride + i].
     * Each loaded vector feeds four multiply-adds.
     */
    public static void dot4x4(float[] w, int wOff, float[] x, int xOff, int n, float[] out, int outIdx, int outStride) {
        var a0 = FloatVector.zero(F);
        var a1 = FloatVector.zero(F);
        var a2 = FloatVector.zero(F);
        var a3 = FloatVector.zero(F);
        var b0 = FloatVector.zero(F);
        var b1 = FloatVector.zero(F);
        var b2 = FloatVector.zero(F);
        var b3 = FloatVector.zero(F);
        var c0 = FloatVector.zero(F);
        var c1 = FloatVector.zero(F);
        var c2 = FloatVector.zero(F);
        var c3 = FloatVector.zero(F);
        var d0 = FloatVector.zero(F);
        var d1 = FloatVector.zero(F);
        var d2 = FloatVector.zero(F);
        var d3 = FloatVector.zero(F);
        int k = 0;
        for (int upper = F.loopBound(n); k < upper; k += F.length()) {
            var w0 = FloatVector.fromArray(F, w, wOff + k);
            var w1 = FloatVector.fromArray(F, w, wOff + n + k);
            var w2 = FloatVector.fromArray(F, w, wOff + 2 * n + k);
            var w3 = FloatVector.fromArray(F, w, wOff + 3 * n + k);
            var x0 = FloatVector.fromArray(F, x, xOff + k);
            a0 = w0.fma(x0, a0);
            a1 = w1.fma(x0, a1);
            a2 = w2.fma(x0, a2);
            a3 = w3.fma(x0, a3);
            var x1 = FloatVector.fromArray(F, x, xOff + n + k);
            b0 = w0.fma(x1, b0);
            b1 = w1.fma(x1, b1);
            b2 = w2.fma(x1, b2);
            b3 = w3.fma(x1, b3);
            var x2 = FloatVector.fromArray(F, x, xOff + 2 * n + k);
            c0 = w0.fma(x2, c0);
            c1 = w1.fma(x2, c1);
            c2 = w2.fma(x2, c2);
            c3 = w3.fma(x2, c3);
            var x3 = FloatVector.fromArray(F, x, xOff + 3 * n + k);
            d0 = w0.fma(x3, d0);
            d1 = w1.fma(x3, d1);
            d2 = w2.fma(x3, d2);
            d3 = w3.fma(x3, d3);
        }
        var add = VectorOperators.ADD;
        float[] sums = {a0.reduceLanes(add), a1.reduceLanes(add), a2.reduceLanes(add), a3.reduceLanes(add),
            b0.reduceLanes(add), b1.reduceLanes(add), b2.reduceLanes(add), b3.reduceLanes(add),
            c0.reduceLanes(add), c1.reduceLanes(add), c2.reduceLanes(add), c3.reduceLanes(add),
            d0.reduceLanes(add), d1.reduceLanes(add), d2.reduceLanes(add), d3.reduceLanes(add)};
        for (int j = 0; j < 4; j++) {
            for (int i = 0; i < 4; i++) {
                float sum = sums[4 * j + i];
                for (int t = k; t < n; t++) {
                    sum += w[wOff + i * n + t] * x[xOff + j * n + t];
                }
                out[outIdx + j * outStride + i] = sum;
            }
        }
    }

    /** y[yOff..+n) += a * x[xOff..+n). */
    public static void axpy(float a, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            FloatVector.fromArray(F, x, xOff + i).fma(FloatVector.broadcast(F, a), FloatVector.fromArray(F, y, yOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += a * x[xOff + i];
        }
    }

    /** y[0..n) += x[0..n). */
    public static void add(float[] x, float[] y, int n) {
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            FloatVector.fromArray(F, y, i).add(FloatVector.fromArray(F, x, i)).intoArray(y, i);
        }
        for (; i < n; i++) {
            y[i] += x[i];
        }
    }

    /** out = w * x / sqrt(mean(x^2) + eps), over n elements. out may alias x. */
    public static void rmsnorm(float[] out, int outOff, float[] x, int xOff, float[] w, float eps, int n) {
        float ss = dot(x, xOff, x, xOff, n);
        float scale = (float) (1.0 / Math.sqrt(ss / n + eps));
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            FloatVector.fromArray(F, x, xOff + i).mul(scale).mul(FloatVector.fromArray(F, w, i)).intoArray(out, outOff + i);
        }
        for (; i < n; i++) {
            out[outOff + i] = w[i] * (x[xOff + i] * scale);
        }
    }

    /** In-place softmax of x[off..off+n), max-subtracted, fp32. */
    public static void softmax(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        float sum = 0f;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[off + i] - max);
            x[off + i] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int i = 0; i < n; i++) {
            x[off + i] *= inv;
        }
    }

    /** gate[i] = silu(gate[i]) * up[i] for i in [0, n): the SwiGLU activation. */
    public static void siluAndMultiply(float[] gate, float[] up, int n) {
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            var g = FloatVector.fromArray(F, gate, i);
            var silu = g.div(g.neg().lanewise(VectorOperators.EXP).add(1f));
            silu.mul(FloatVector.fromArray(F, up, i)).intoArray(gate, i);
        }
        for (; i < n; i++) {
            float g = gate[i];
            gate[i] = g / (1f + (float) Math.exp(-g)) * up[i];
        }
    }

    /**
     * Rotary embedding, NeoX / rotate_half pairing: element j pairs with j + d/2.
     * cos and sin hold d/2 values for this position.
     */
    public static void rope(float[] x, int off, float[] cos, float[] sin, int d) {
        int half = d / 2;
        for (int j = 0; j < half; j++) {
            float a = x[off + j], b = x[off + j + half];
            x[off + j] = a * cos[j] - b * sin[j];
            x[off + j + half] = b * cos[j] + a * sin[j];
        }
    }

    /**
     * Achievable fp32 FMA rate of the pool: a 4x4 register tile (four weight rows times four input
     * rows, 16 accumulators) over L1-resident data, best of several runs after warm-up. The
     * compute ceiling the benchmarks report against, in flop/s.
     */
    public static double peakFlops(Parallel parallel) {
        int n = 512, rounds = 4_000;
        float[] w = new float[4 * n], x = new float[4 * n];
        java.util.Arrays.fill(w, 1.0001f);
        java.util.Arrays.fill(x, 0.9999f);
        float[] sink = new float[parallel.threads()];
        double best = 0;
        for (int attempt = 0; attempt < 8; attempt++) {
            long t = System.nanoTime();
            parallel.forEach(parallel.threads(), thread -> {
                float s = 0;
                for (int r = 0; r < rounds; r++) {
                    s += tile4x4(w, x, n);
                }
                sink[thread] = s;
            });
            best = Math.max(best, 2.0 * 16 * n * rounds * parallel.threads() / ((System.nanoTime() - t) / 1e9));
        }
        return best;
    }

    private static float tile4x4(float[] w, float[] x, int n) {
        var a0 = FloatVector.zero(F);
        var a1 = FloatVector.zero(F);
        var a2 = FloatVector.zero(F);
        var a3 = FloatVector.zero(F);
        var b0 = FloatVector.zero(F);
        var b1 = FloatVector.zero(F);
        var b2 = FloatVector.zero(F);
        var b3 = FloatVector.zero(F);
        var c0 = FloatVector.zero(F);
        var c1 = FloatVector.zero(F);
        var c2 = FloatVector.zero(F);
        var c3 = FloatVector.zero(F);
        var d0 = FloatVector.zero(F);
        var d1 = FloatVector.zero(F);
        var d2 = FloatVector.zero(F);
        var d3 = FloatVector.zero(F);
        for (int k = 0; k < n; k += F.length()) {
            var w0 = FloatVector.fromArray(F, w, k);
            var w1 = FloatVector.fromArray(F, w, n + k);
            var w2 = FloatVector.fromArray(F, w, 2 * n + k);
            var w3 = FloatVector.fromArray(F, w, 3 * n + k);
            var x0 = FloatVector.fromArray(F, x, k);
            a0 = w0.fma(x0, a0);
            a1 = w1.fma(x0, a1);
            a2 = w2.fma(x0, a2);
            a3 = w3.fma(x0, a3);
            var x1 = FloatVector.fromArray(F, x, n + k);
            b0 = w0.fma(x1, b0);
            b1 = w1.fma(x1, b1);
            b2 = w2.fma(x1, b2);
            b3 = w3.fma(x1, b3);
            var x2 = FloatVector.fromArray(F, x, 2 * n + k);
            c0 = w0.fma(x2, c0);
            c1 = w1.fma(x2, c1);
            c2 = w2.fma(x2, c2);
            c3 = w3.fma(x2, c3);
            var x3 = FloatVector.fromArray(F, x, 3 * n + k);
            d0 = w0.fma(x3, d0);
            d1 = w1.fma(x3, d1);
            d2 = w2.fma(x3, d2);
            d3 = w3.fma(x3, d3);
        }
        return a0.add(a1).add(a2).add(a3).add(b0).add(b1).add(b2).add(b3)
                .add(c0).add(c1).add(c2).add(c3).add(d0).add(d1).add(d2).add(d3).reduceLanes(VectorOperators.ADD);
    }
}
