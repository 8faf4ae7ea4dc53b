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
     * Four dot products of w[0..n) with x rows starting at xOff, xOff+n, xOff+2n, xOff+3n; results to
     * out[outIdx + k*outStride]. w is read once for the four.
     */
    public static void dot4(float[] w, float[] x, int n, int xOff, float[] out, int outIdx, int outStride) {
        var a = FloatVector.zero(F);
        var b = FloatVector.zero(F);
        var c = FloatVector.zero(F);
        var d = FloatVector.zero(F);
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            var wv = FloatVector.fromArray(F, w, i);
            a = wv.fma(FloatVector.fromArray(F, x, xOff + i), a);
            b = wv.fma(FloatVector.fromArray(F, x, xOff + n + i), b);
            c = wv.fma(FloatVector.fromArray(F, x, xOff + 2 * n + i), c);
            d = wv.fma(FloatVector.fromArray(F, x, xOff + 3 * n + i), d);
        }
        float sa = a.reduceLanes(VectorOperators.ADD), sb = b.reduceLanes(VectorOperators.ADD);
        float sc = c.reduceLanes(VectorOperators.ADD), sd = d.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            sa += w[i] * x[xOff + i];
            sb += w[i] * x[xOff + n + i];
            sc += w[i] * x[xOff + 2 * n + i];
            sd += w[i] * x[xOff + 3 * n + i];
        }
        out[outIdx] = sa;
        out[outIdx + outStride] = sb;
        out[outIdx + 2 * outStride] = sc;
        out[outIdx + 3 * outStride] = sd;
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
     * Achievable fp32 FMA rate of the pool on L1-resident data (eight independent accumulators per
     * thread, best of several runs after warm-up): the compute ceiling benchmarks report against,
     * in flop/s.
     */
    public static double peakFlops(Parallel parallel) {
        int n = 1024, rounds = 20_000;
        float[] a = new float[n], b = new float[n];
        java.util.Arrays.fill(a, 1.0001f);
        java.util.Arrays.fill(b, 0.9999f);
        float[] sink = new float[parallel.threads()];
        double best = 0;
        for (int attempt = 0; attempt < 8; attempt++) {
            long t = System.nanoTime();
            parallel.forEach(parallel.threads(), w -> sink[w] = fmaRounds(a, b, n, rounds));
            best = Math.max(best, 2.0 * n * rounds * parallel.threads() / ((System.nanoTime() - t) / 1e9));
        }
        return best;
    }

    private static float fmaRounds(float[] a, float[] b, int n, int rounds) {
        int l = F.length();
        var s0 = FloatVector.zero(F);
        var s1 = FloatVector.zero(F);
        var s2 = FloatVector.zero(F);
        var s3 = FloatVector.zero(F);
        var s4 = FloatVector.zero(F);
        var s5 = FloatVector.zero(F);
        var s6 = FloatVector.zero(F);
        var s7 = FloatVector.zero(F);
        for (int r = 0; r < rounds; r++) {
            for (int i = 0; i + 2 * l <= n; i += 2 * l) {
                var x = FloatVector.fromArray(F, a, i);
                var y = FloatVector.fromArray(F, a, i + l);
                s0 = x.fma(x, s0);
                s1 = y.fma(y, s1);
                s2 = x.fma(y, s2);
                s3 = y.fma(x, s3);
                s4 = x.fma(x, s4);
                s5 = y.fma(y, s5);
                s6 = x.fma(y, s6);
                s7 = y.fma(x, s7);
            }
        }
        return s0.add(s1).add(s2).add(s3).add(s4).add(s5).add(s6).add(s7).reduceLanes(VectorOperators.ADD);
    }
}
