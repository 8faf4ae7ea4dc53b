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
