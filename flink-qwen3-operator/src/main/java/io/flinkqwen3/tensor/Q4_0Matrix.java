package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * ggml Q4_0: blocks of 32 weights, an f16 scale d then 16 bytes; byte j holds weight j in its low
 * nibble and weight j+16 in its high nibble, both offset by 8: w = d * (nibble - 8).
 */
public final class Q4_0Matrix extends Block32Matrix {
    static final int BLOCK_BYTES = 18;

    Q4_0Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
        if (F.length() > 16) {
            throw new IllegalStateException("Q4_0 kernel expects at most 16 float lanes, this CPU has " + F.length());
        }
    }

    /** From 4 input rows on (nibble unpacking costs more than the 4-row kernel saves). */
    @Override
    protected int unpackOnceFromBatch() {
        return 4;
    }

    @Override
    public DType type() {
        return DType.Q4_0;
    }

    private static FloatVector low(ByteVector p) {
        return (FloatVector) p.and((byte) 15).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
    }

    private static FloatVector high(ByteVector p) {
        return (FloatVector) p.lanewise(VectorOperators.LSHR, 4).and((byte) 15).sub((byte) 8).convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    protected float dot(int row, float[] x, int xOff) {
        long base = row * rowBytes;
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        for (int c = 0; c < cols; c += BLOCK, base += BLOCK_BYTES) {
            var scale = FloatVector.broadcast(F, scale(base));
            for (int j = 0; j < 16; j += F.length()) {
                var p = quantBytes(base, j);
                acc0 = low(p).mul(scale).fma(FloatVector.fromArray(F, x, xOff + c + j), acc0);
                acc1 = high(p).mul(scale).fma(FloatVector.fromArray(F, x, xOff + c + 16 + j), acc1);
            }
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    @Override
    protected void dot4(int row, float[] x, int a, int b, int c4, int d, float[] out, int outIdx, int outStride) {
        long base = row * rowBytes;
        var accA = FloatVector.zero(F);
        var accB = FloatVector.zero(F);
        var accC = FloatVector.zero(F);
        var accD = FloatVector.zero(F);
        for (int c = 0; c < cols; c += BLOCK, base += BLOCK_BYTES) {
            var scale = FloatVector.broadcast(F, scale(base));
            for (int j = 0; j < 16; j += F.length()) {
                var p = quantBytes(base, j);
                var lo = low(p).mul(scale);
                var hi = high(p).mul(scale);
                int l = c + j, h = c + 16 + j;
                accA = hi.fma(FloatVector.fromArray(F, x, a + h), lo.fma(FloatVector.fromArray(F, x, a + l), accA));
                accB = hi.fma(FloatVector.fromArray(F, x, b + h), lo.fma(FloatVector.fromArray(F, x, b + l), accB));
                accC = hi.fma(FloatVector.fromArray(F, x, c4 + h), lo.fma(FloatVector.fromArray(F, x, c4 + l), accC));
                accD = hi.fma(FloatVector.fromArray(F, x, d + h), lo.fma(FloatVector.fromArray(F, x, d + l), accD));
            }
        }
        store4(out, outIdx, outStride, accA.reduceLanes(VectorOperators.ADD), accB.reduceLanes(VectorOperators.ADD), accC.reduceLanes(VectorOperators.ADD), accD.reduceLanes(VectorOperators.ADD));
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = row * rowBytes;
        for (int c = 0; c < cols; c += BLOCK, base += BLOCK_BYTES) {
            var scale = FloatVector.broadcast(F, scale(base));
            for (int j = 0; j < 16; j += F.length()) {
                var p = quantBytes(base, j);
                low(p).mul(scale).intoArray(out, outOff + c + j);
                high(p).mul(scale).intoArray(out, outOff + c + 16 + j);
            }
        }
    }

    /** Quantizes floats to Q4_0 as ggml does: d = max / -8 (signed extreme), q = clamp(round(x/d) + 8, 0, 15). */
    public static void quantize(float[] x, int xOff, int n, MemorySegment out, long outOff) {
        for (int c = 0; c < n; c += BLOCK, outOff += BLOCK_BYTES) {
            float amax = 0f, max = 0f;
            for (int j = 0; j < BLOCK; j++) {
                float v = x[xOff + c + j];
                if (Math.abs(v) > amax) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            float d = max / -8f;
            float id = d == 0 ? 0 : 1f / d;
            out.set(ValueLayout.JAVA_SHORT_UNALIGNED, outOff, Float.floatToFloat16(d));
            for (int j = 0; j < 16; j++) {
                int lo = Math.min(15, (int) (x[xOff + c + j] * id + 8.5f));
                int hi = Math.min(15, (int) (x[xOff + c + 16 + j] * id + 8.5f));
                out.set(ValueLayout.JAVA_BYTE, outOff + 2 + j, (byte) (lo | (hi << 4)));
            }
        }
    }
}
