package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** bfloat16 weights as stored: the top 16 bits of an fp32 (kernels: {@link PackedBF16}). */
public final class BF16Matrix extends Matrix {
    BF16Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.BF16;
    }

    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    private float at(long base, int c) {
        return toFloat(data.get(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * c));
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = (long) row * cols * 2;
        for (int c = 0; c < cols; c++) {
            out[outOff + c] = at(base, c);
        }
    }
}
