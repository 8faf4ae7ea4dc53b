package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * IEEE half-precision weights as the file stores them, row-major: what {@link PackedF16} repacks
 * from, and the matrix used as it is where the columns are not a multiple of 32; it widens each
 * weight with the (intrinsified) {@link Float#float16ToFloat}.
 */
public final class F16Matrix extends Matrix {
    F16Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.F16;
    }

    private float at(long base, int c) {
        return Float.float16ToFloat(data.get(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * c));
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = (long) row * cols * 2;
        for (int c = 0; c < cols; c++) {
            out[outOff + c] = at(base, c);
        }
    }
}
