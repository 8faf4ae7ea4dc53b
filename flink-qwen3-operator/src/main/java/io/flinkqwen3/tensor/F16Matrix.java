package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * IEEE half-precision weights. The Vector API has no half-to-float lane conversion, so this kernel
 * widens each weight with the (intrinsified) {@link Float#float16ToFloat}; F16 checkpoints are rare
 * for Qwen3, which ships bf16.
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
    protected float dot(int row, float[] x, int xOff) {
        long base = (long) row * cols * 2;
        float sum = 0f;
        for (int c = 0; c < cols; c++) {
            sum = Math.fma(at(base, c), x[xOff + c], sum);
        }
        return sum;
    }

    @Override
    protected void dot4(int row, float[] x, int a, int b, int c4, int d, float[] out, int outIdx, int outStride) {
        long base = (long) row * cols * 2;
        float sa = 0f, sb = 0f, sc = 0f, sd = 0f;
        for (int c = 0; c < cols; c++) {
            float w = at(base, c);
            sa = Math.fma(w, x[a + c], sa);
            sb = Math.fma(w, x[b + c], sb);
            sc = Math.fma(w, x[c4 + c], sc);
            sd = Math.fma(w, x[d + c], sd);
        }
        store4(out, outIdx, outStride, sa, sb, sc, sd);
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = (long) row * cols * 2;
        for (int c = 0; c < cols; c++) {
            out[outOff + c] = at(base, c);
        }
    }
}
