package io.flinkqwen3.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Element-wise and reduction kernels over fp32 activations: Vector API main loop, scalar tail.
 * They know nothing of models: offsets and lengths in, results written in place or to out.
 */
public final class Kernels {
    /** The widest float species of this CPU, chosen at run time. */
    public static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();

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

    /** y[yOff..+n) += x[xOff..+n). */
    public static void add(float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            FloatVector.fromArray(F, y, yOff + i).add(FloatVector.fromArray(F, x, xOff + i)).intoArray(y, yOff + i);
        }
        for (; i < n; i++) {
            y[yOff + i] += x[xOff + i];
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

    /**
     * log(sum(exp(x))) over x[off..off+n), max-subtracted, summed in double: the log of softmax's
     * normalizer (a token's log-probability is its logit minus this). NaN if any x is NaN.
     */
    public static double logSumExp(float[] x, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(x[off + i] - max);
        }
        return max + Math.log(sum);
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
     * The batched-matmul register tile: 6 input rows x 4 weight vectors, 24 accumulators.
     * w is [kc][4L] (column k of four L-row panels at w[k*4L ..], L = lanes), x rows start at xOff,
     * xOff + xStride, ..., 6 of them; t receives [6][4L]: t[i*4L + r] = sum_k x[i][k] * w[k][r].
     * Each step loads 4 weight vectors and broadcasts 6 inputs for 24 FMAs, which keeps the FMA
     * units, not the loads, the limit (measured ~90% of the fp32 peak from L1/L2).
     */
    public static void tile6x4(float[] w, int kc, float[] x, int xOff, int xStride, float[] t) {
        final int l = F.length(), stride = 4 * l;
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
        var e0 = FloatVector.zero(F);
        var e1 = FloatVector.zero(F);
        var e2 = FloatVector.zero(F);
        var e3 = FloatVector.zero(F);
        var f0 = FloatVector.zero(F);
        var f1 = FloatVector.zero(F);
        var f2 = FloatVector.zero(F);
        var f3 = FloatVector.zero(F);
        int x0 = xOff, x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride, x4 = x3 + xStride, x5 = x4 + xStride;
        for (int k = 0, wo = 0; k < kc; k++, wo += stride) {
            var w0 = FloatVector.fromArray(F, w, wo);
            var w1 = FloatVector.fromArray(F, w, wo + l);
            var w2 = FloatVector.fromArray(F, w, wo + 2 * l);
            var w3 = FloatVector.fromArray(F, w, wo + 3 * l);
            var va = FloatVector.broadcast(F, x[x0 + k]);
            a0 = w0.fma(va, a0);
            a1 = w1.fma(va, a1);
            a2 = w2.fma(va, a2);
            a3 = w3.fma(va, a3);
            var vb = FloatVector.broadcast(F, x[x1 + k]);
            b0 = w0.fma(vb, b0);
            b1 = w1.fma(vb, b1);
            b2 = w2.fma(vb, b2);
            b3 = w3.fma(vb, b3);
            var vc = FloatVector.broadcast(F, x[x2 + k]);
            c0 = w0.fma(vc, c0);
            c1 = w1.fma(vc, c1);
            c2 = w2.fma(vc, c2);
            c3 = w3.fma(vc, c3);
            var vd = FloatVector.broadcast(F, x[x3 + k]);
            d0 = w0.fma(vd, d0);
            d1 = w1.fma(vd, d1);
            d2 = w2.fma(vd, d2);
            d3 = w3.fma(vd, d3);
            var ve = FloatVector.broadcast(F, x[x4 + k]);
            e0 = w0.fma(ve, e0);
            e1 = w1.fma(ve, e1);
            e2 = w2.fma(ve, e2);
            e3 = w3.fma(ve, e3);
            var vf = FloatVector.broadcast(F, x[x5 + k]);
            f0 = w0.fma(vf, f0);
            f1 = w1.fma(vf, f1);
            f2 = w2.fma(vf, f2);
            f3 = w3.fma(vf, f3);
        }
        a0.intoArray(t, 0 * stride + 0 * l);
        a1.intoArray(t, 0 * stride + 1 * l);
        a2.intoArray(t, 0 * stride + 2 * l);
        a3.intoArray(t, 0 * stride + 3 * l);
        b0.intoArray(t, 1 * stride + 0 * l);
        b1.intoArray(t, 1 * stride + 1 * l);
        b2.intoArray(t, 1 * stride + 2 * l);
        b3.intoArray(t, 1 * stride + 3 * l);
        c0.intoArray(t, 2 * stride + 0 * l);
        c1.intoArray(t, 2 * stride + 1 * l);
        c2.intoArray(t, 2 * stride + 2 * l);
        c3.intoArray(t, 2 * stride + 3 * l);
        d0.intoArray(t, 3 * stride + 0 * l);
        d1.intoArray(t, 3 * stride + 1 * l);
        d2.intoArray(t, 3 * stride + 2 * l);
        d3.intoArray(t, 3 * stride + 3 * l);
        e0.intoArray(t, 4 * stride + 0 * l);
        e1.intoArray(t, 4 * stride + 1 * l);
        e2.intoArray(t, 4 * stride + 2 * l);
        e3.intoArray(t, 4 * stride + 3 * l);
        f0.intoArray(t, 5 * stride + 0 * l);
        f1.intoArray(t, 5 * stride + 1 * l);
        f2.intoArray(t, 5 * stride + 2 * l);
        f3.intoArray(t, 5 * stride + 3 * l);
    }

    /** {@link #tile6x4} for 4 input rows (the tail of a batch): t receives [4][4L]. */
    public static void tile4x4(float[] w, int kc, float[] x, int xOff, int xStride, float[] t) {
        final int l = F.length(), stride = 4 * l;
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
        int x0 = xOff, x1 = x0 + xStride, x2 = x1 + xStride, x3 = x2 + xStride;
        for (int k = 0, wo = 0; k < kc; k++, wo += stride) {
            var w0 = FloatVector.fromArray(F, w, wo);
            var w1 = FloatVector.fromArray(F, w, wo + l);
            var w2 = FloatVector.fromArray(F, w, wo + 2 * l);
            var w3 = FloatVector.fromArray(F, w, wo + 3 * l);
            var va = FloatVector.broadcast(F, x[x0 + k]);
            a0 = w0.fma(va, a0);
            a1 = w1.fma(va, a1);
            a2 = w2.fma(va, a2);
            a3 = w3.fma(va, a3);
            var vb = FloatVector.broadcast(F, x[x1 + k]);
            b0 = w0.fma(vb, b0);
            b1 = w1.fma(vb, b1);
            b2 = w2.fma(vb, b2);
            b3 = w3.fma(vb, b3);
            var vc = FloatVector.broadcast(F, x[x2 + k]);
            c0 = w0.fma(vc, c0);
            c1 = w1.fma(vc, c1);
            c2 = w2.fma(vc, c2);
            c3 = w3.fma(vc, c3);
            var vd = FloatVector.broadcast(F, x[x3 + k]);
            d0 = w0.fma(vd, d0);
            d1 = w1.fma(vd, d1);
            d2 = w2.fma(vd, d2);
            d3 = w3.fma(vd, d3);
        }
        a0.intoArray(t, 0 * stride + 0 * l);
        a1.intoArray(t, 0 * stride + 1 * l);
        a2.intoArray(t, 0 * stride + 2 * l);
        a3.intoArray(t, 0 * stride + 3 * l);
        b0.intoArray(t, 1 * stride + 0 * l);
        b1.intoArray(t, 1 * stride + 1 * l);
        b2.intoArray(t, 1 * stride + 2 * l);
        b3.intoArray(t, 1 * stride + 3 * l);
        c0.intoArray(t, 2 * stride + 0 * l);
        c1.intoArray(t, 2 * stride + 1 * l);
        c2.intoArray(t, 2 * stride + 2 * l);
        c3.intoArray(t, 2 * stride + 3 * l);
        d0.intoArray(t, 3 * stride + 0 * l);
        d1.intoArray(t, 3 * stride + 1 * l);
        d2.intoArray(t, 3 * stride + 2 * l);
        d3.intoArray(t, 3 * stride + 3 * l);
    }

    /**
     * c[r, cOff + j] += sum over k < inner of a[r * aStride + aOff + k] * b[bOff + k * bStride + j],
     * for r < rows (a multiple of 4) and j < cols: register tiles of 4 rows by 4 vectors, then
     * one (masked) vector at a time for the columns left. The tiles are methods of their own: in
     * one method with the loops around them, C1 runs out of registers compiling it and C2 never
     * gets to, which leaves the Vector API's Java fallback running (100x slower).
     */
    public static void matmulStrided(float[] a, int aOff, int aStride, int rows, float[] b, int bOff, int bStride, int inner,
                               float[] c, int cOff, int cStride, int cols) {
        for (int r = 0; r < rows; r += 4) {
            int a0 = r * aStride + aOff, c0 = cOff + r * cStride;
            int j = 0;
            for (; j + 4 * L <= cols; j += 4 * L) {
                stridedTile4x4(a, a0, aStride, b, bOff + j, bStride, inner, c, c0 + j, cStride);
            }
            for (; j < cols; j += L) {
                stridedTile4x1(a, a0, aStride, b, bOff + j, bStride, inner, c, c0 + j, cStride, F.indexInRange(j, cols));
            }
        }
    }

    /**
     * 4 rows by 4 vectors: every vector of b loaded serves 4 rows, every value of a 4 vectors.
     * c[i * cStride + c0 + x] += sum over k of a[a0 + i * aStride + k] * b[p0 + k * bStride + x], i < 4, x < 4L.
     */
    private static void stridedTile4x4(float[] a, int a0, int aStride, float[] b, int p0, int bStride, int inner, float[] c, int c0,
                                int cStride) {
        int a1 = a0 + aStride, a2 = a1 + aStride, a3 = a2 + aStride;
        int c1 = c0 + cStride, c2 = c1 + cStride, c3 = c2 + cStride;
        var s00 = FloatVector.fromArray(F, c, c0);
        var s01 = FloatVector.fromArray(F, c, c0 + L);
        var s02 = FloatVector.fromArray(F, c, c0 + 2 * L);
        var s03 = FloatVector.fromArray(F, c, c0 + 3 * L);
        var s10 = FloatVector.fromArray(F, c, c1);
        var s11 = FloatVector.fromArray(F, c, c1 + L);
        var s12 = FloatVector.fromArray(F, c, c1 + 2 * L);
        var s13 = FloatVector.fromArray(F, c, c1 + 3 * L);
        var s20 = FloatVector.fromArray(F, c, c2);
        var s21 = FloatVector.fromArray(F, c, c2 + L);
        var s22 = FloatVector.fromArray(F, c, c2 + 2 * L);
        var s23 = FloatVector.fromArray(F, c, c2 + 3 * L);
        var s30 = FloatVector.fromArray(F, c, c3);
        var s31 = FloatVector.fromArray(F, c, c3 + L);
        var s32 = FloatVector.fromArray(F, c, c3 + 2 * L);
        var s33 = FloatVector.fromArray(F, c, c3 + 3 * L);
        for (int k = 0, p = p0; k < inner; k++, p += bStride) {
            var b0 = FloatVector.fromArray(F, b, p);
            var b1 = FloatVector.fromArray(F, b, p + L);
            var b2 = FloatVector.fromArray(F, b, p + 2 * L);
            var b3 = FloatVector.fromArray(F, b, p + 3 * L);
            var x = FloatVector.broadcast(F, a[a0 + k]);
            s00 = b0.fma(x, s00);
            s01 = b1.fma(x, s01);
            s02 = b2.fma(x, s02);
            s03 = b3.fma(x, s03);
            x = FloatVector.broadcast(F, a[a1 + k]);
            s10 = b0.fma(x, s10);
            s11 = b1.fma(x, s11);
            s12 = b2.fma(x, s12);
            s13 = b3.fma(x, s13);
            x = FloatVector.broadcast(F, a[a2 + k]);
            s20 = b0.fma(x, s20);
            s21 = b1.fma(x, s21);
            s22 = b2.fma(x, s22);
            s23 = b3.fma(x, s23);
            x = FloatVector.broadcast(F, a[a3 + k]);
            s30 = b0.fma(x, s30);
            s31 = b1.fma(x, s31);
            s32 = b2.fma(x, s32);
            s33 = b3.fma(x, s33);
        }
        store4(c, c0, s00, s01, s02, s03);
        store4(c, c1, s10, s11, s12, s13);
        store4(c, c2, s20, s21, s22, s23);
        store4(c, c3, s30, s31, s32, s33);
    }

    /** {@link #stridedTile4x4} for one vector of columns, masked (the columns left over). */
    private static void stridedTile4x1(float[] a, int a0, int aStride, float[] b, int p0, int bStride, int inner, float[] c, int c0,
                                int cStride, VectorMask<Float> m) {
        int a1 = a0 + aStride, a2 = a1 + aStride, a3 = a2 + aStride;
        int c1 = c0 + cStride, c2 = c1 + cStride, c3 = c2 + cStride;
        var s0 = FloatVector.fromArray(F, c, c0, m);
        var s1 = FloatVector.fromArray(F, c, c1, m);
        var s2 = FloatVector.fromArray(F, c, c2, m);
        var s3 = FloatVector.fromArray(F, c, c3, m);
        for (int k = 0, p = p0; k < inner; k++, p += bStride) {
            var bv = FloatVector.fromArray(F, b, p, m);
            s0 = bv.fma(FloatVector.broadcast(F, a[a0 + k]), s0);
            s1 = bv.fma(FloatVector.broadcast(F, a[a1 + k]), s1);
            s2 = bv.fma(FloatVector.broadcast(F, a[a2 + k]), s2);
            s3 = bv.fma(FloatVector.broadcast(F, a[a3 + k]), s3);
        }
        s0.intoArray(c, c0, m);
        s1.intoArray(c, c1, m);
        s2.intoArray(c, c2, m);
        s3.intoArray(c, c3, m);
    }

    private static void store4(float[] c, int off, FloatVector v0, FloatVector v1, FloatVector v2, FloatVector v3) {
        v0.intoArray(c, off);
        v1.intoArray(c, off + L);
        v2.intoArray(c, off + 2 * L);
        v3.intoArray(c, off + 3 * L);
    }

    /**
     * The fp32 FMA rate of the pool's threads: 24 independent FMA chains per thread held in
     * registers (as ../shared/tools/vector-peak does), best of several runs after warm-up. The
     * compute ceiling the benchmarks report against, in flop/s.
     */
    public static double peakFlops(Parallel parallel) {
        int rounds = 2_000_000;
        float[] sink = new float[parallel.threads()];
        for (int warmUp = 0; warmUp < 50; warmUp++) { // short calls first: C2 compiles the method, not an OSR loop
            sink[0] += fmaChains(rounds / 100, 1f);
        }
        double best = 0;
        for (int attempt = 0; attempt < 6; attempt++) {
            long t = System.nanoTime();
            parallel.forEach(parallel.threads(), thread -> sink[thread] = fmaChains(rounds, 1f + thread * 1e-7f));
            best = Math.max(best, 2.0 * 24 * F.length() * rounds * parallel.threads() / ((System.nanoTime() - t) / 1e9));
        }
        return best;
    }

    /**
     * The memory read bandwidth of the pool's threads, in bytes/s: each thread streams its half of a
     * 1 GiB off-heap buffer (larger than any L3 these machines have) with vector loads, best of
     * several passes. The ceiling for single-sequence decode, which reads every weight once per token.
     */
    public static double readBandwidth(Parallel parallel) {
        long bytes = 1L << 30;
        int parts = parallel.threads();
        try (Arena arena = Arena.ofShared()) {
            MemorySegment buffer = NativeMemory.allocate(bytes, arena); // the kind of memory the packed weights live in
            buffer.fill((byte) 1); // touch every page before timing
            float[] sink = new float[parts];
            double best = 0;
            for (int pass = 0; pass < 6; pass++) {
                long t = System.nanoTime();
                parallel.forEach(parts, part -> sink[part] = sum(buffer, part * (bytes / parts), bytes / parts));
                best = Math.max(best, bytes / ((System.nanoTime() - t) / 1e9));
            }
            return best;
        }
    }

    private static float sum(MemorySegment buffer, long offset, long length) {
        var a = FloatVector.zero(F);
        var b = FloatVector.zero(F);
        var c = FloatVector.zero(F);
        var d = FloatVector.zero(F);
        int v = F.vectorByteSize();
        for (long o = offset; o < offset + length; o += 4L * v) {
            a = a.add(FloatVector.fromMemorySegment(F, buffer, o, ByteOrder.LITTLE_ENDIAN));
            b = b.add(FloatVector.fromMemorySegment(F, buffer, o + v, ByteOrder.LITTLE_ENDIAN));
            c = c.add(FloatVector.fromMemorySegment(F, buffer, o + 2L * v, ByteOrder.LITTLE_ENDIAN));
            d = d.add(FloatVector.fromMemorySegment(F, buffer, o + 3L * v, ByteOrder.LITTLE_ENDIAN));
        }
        return a.add(b).add(c).add(d).reduceLanes(VectorOperators.ADD);
    }

    private static float fmaChains(int rounds, float seed) {
        var m = FloatVector.broadcast(F, 0.9999999f);
        var c = FloatVector.broadcast(F, 1e-7f);
        var r0 = FloatVector.broadcast(F, seed + 0);
        var r1 = FloatVector.broadcast(F, seed + 1);
        var r2 = FloatVector.broadcast(F, seed + 2);
        var r3 = FloatVector.broadcast(F, seed + 3);
        var r4 = FloatVector.broadcast(F, seed + 4);
        var r5 = FloatVector.broadcast(F, seed + 5);
        var r6 = FloatVector.broadcast(F, seed + 6);
        var r7 = FloatVector.broadcast(F, seed + 7);
        var r8 = FloatVector.broadcast(F, seed + 8);
        var r9 = FloatVector.broadcast(F, seed + 9);
        var r10 = FloatVector.broadcast(F, seed + 10);
        var r11 = FloatVector.broadcast(F, seed + 11);
        var r12 = FloatVector.broadcast(F, seed + 12);
        var r13 = FloatVector.broadcast(F, seed + 13);
        var r14 = FloatVector.broadcast(F, seed + 14);
        var r15 = FloatVector.broadcast(F, seed + 15);
        var r16 = FloatVector.broadcast(F, seed + 16);
        var r17 = FloatVector.broadcast(F, seed + 17);
        var r18 = FloatVector.broadcast(F, seed + 18);
        var r19 = FloatVector.broadcast(F, seed + 19);
        var r20 = FloatVector.broadcast(F, seed + 20);
        var r21 = FloatVector.broadcast(F, seed + 21);
        var r22 = FloatVector.broadcast(F, seed + 22);
        var r23 = FloatVector.broadcast(F, seed + 23);
        for (long i = 0; i < rounds; i++) { // a long counter: C2 does not unroll it into spills
            r0 = r0.fma(m, c);
            r1 = r1.fma(m, c);
            r2 = r2.fma(m, c);
            r3 = r3.fma(m, c);
            r4 = r4.fma(m, c);
            r5 = r5.fma(m, c);
            r6 = r6.fma(m, c);
            r7 = r7.fma(m, c);
            r8 = r8.fma(m, c);
            r9 = r9.fma(m, c);
            r10 = r10.fma(m, c);
            r11 = r11.fma(m, c);
            r12 = r12.fma(m, c);
            r13 = r13.fma(m, c);
            r14 = r14.fma(m, c);
            r15 = r15.fma(m, c);
            r16 = r16.fma(m, c);
            r17 = r17.fma(m, c);
            r18 = r18.fma(m, c);
            r19 = r19.fma(m, c);
            r20 = r20.fma(m, c);
            r21 = r21.fma(m, c);
            r22 = r22.fma(m, c);
            r23 = r23.fma(m, c);
        }
        return r0.add(r1).add(r2).add(r3).add(r4).add(r5).add(r6).add(r7).add(r8).add(r9).add(r10).add(r11)
                .add(r12).add(r13).add(r14).add(r15).add(r16).add(r17).add(r18).add(r19).add(r20).add(r21).add(r22)
                .add(r23).reduceLanes(VectorOperators.ADD);
    }
}
