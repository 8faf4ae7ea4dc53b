package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * ggml Q8_0: blocks of 32 weights, an f16 scale d then 32 int8 q; w = d * q. The int8 values are
 * widened to float lanes (the Vector API has no int8 dot product instruction to reach for), the
 * block's partial dot is scaled once.
 */
public final class Q8_0Matrix extends Block32Matrix {
    static final int BLOCK_BYTES = 34;

    Q8_0Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.Q8_0;
    }

    private FloatVector quants(long block, int j) {
        return (FloatVector) quantBytes(block, j).convertShape(VectorOperators.B2F, F, 0);
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = row * rowBytes;
        for (int c = 0; c < cols; c += BLOCK, base += BLOCK_BYTES) {
            var scale = FloatVector.broadcast(F, scale(base));
            for (int j = 0; j < BLOCK; j += F.length()) {
                quants(base, j).mul(scale).intoArray(out, outOff + c + j);
            }
        }
    }

    /** Quantizes floats to Q8_0 blocks as ggml does: d = max|x| / 127, q = round(x / d). */
    public static void quantize(float[] x, int xOff, int n, MemorySegment out, long outOff) {
        for (int c = 0; c < n; c += BLOCK, outOff += BLOCK_BYTES) {
            float amax = 0f;
            for (int j = 0; j < BLOCK; j++) {
                amax = Math.max(amax, Math.abs(x[xOff + c + j]));
            }
            float d = amax / 127f;
            float id = d == 0 ? 0 : 1f / d;
            out.set(ValueLayout.JAVA_SHORT_UNALIGNED, outOff, Float.floatToFloat16(d));
            for (int j = 0; j < BLOCK; j++) {
                out.set(ValueLayout.JAVA_BYTE, outOff + 2 + j, (byte) Math.round(x[xOff + c + j] * id));
            }
        }
    }
}
