package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * The k-quant formats (256-weight super-blocks with packed sub-block scales). Their bit layouts
 * do not map onto vector lanes cheaply, so a super-block is dequantized once into a per-thread
 * buffer and dotted with vector kernels, once per input row served (four at a time in batches).
 */
public abstract sealed class KQuantMatrix extends Matrix permits Q4_KMatrix, Q6_KMatrix {
    static final int BLOCK = 256;
    private static final ThreadLocal<float[]> BUFFER = ThreadLocal.withInitial(() -> new float[BLOCK]);
    private final long rowBytes;

    KQuantMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
        this.rowBytes = (long) cols / BLOCK * type().blockBytes();
    }

    /** From 4 input rows on (the 4-row kernel unpacks per block anyway). */
    @Override
    protected int unpackOnceFromBatch() {
        return 4;
    }

    /** Writes the 256 weights of the super-block at byte {@code offset} to out[outOff..]. */
    abstract void dequantizeBlock(long offset, float[] out, int outOff);

    @Override
    protected float dot(int row, float[] x, int xOff) {
        float[] w = BUFFER.get();
        long base = row * rowBytes;
        float sum = 0f;
        for (int c = 0; c < cols; c += BLOCK, base += type().blockBytes()) {
            dequantizeBlock(base, w, 0);
            sum += Kernels.dot(w, 0, x, xOff + c, BLOCK);
        }
        return sum;
    }

    @Override
    protected void dot4(int row, float[] x, int a, int b, int c4, int d, float[] out, int outIdx, int outStride) {
        float[] w = BUFFER.get();
        long base = row * rowBytes;
        float sa = 0f, sb = 0f, sc = 0f, sd = 0f;
        for (int c = 0; c < cols; c += BLOCK, base += type().blockBytes()) {
            dequantizeBlock(base, w, 0);
            sa += Kernels.dot(w, 0, x, a + c, BLOCK);
            sb += Kernels.dot(w, 0, x, b + c, BLOCK);
            sc += Kernels.dot(w, 0, x, c4 + c, BLOCK);
            sd += Kernels.dot(w, 0, x, d + c, BLOCK);
        }
        store4(out, outIdx, outStride, sa, sb, sc, sd);
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = row * rowBytes;
        for (int c = 0; c < cols; c += BLOCK, base += type().blockBytes()) {
            dequantizeBlock(base, out, outOff + c);
        }
    }

    int u8(long offset) {
        return data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, offset) & 0xFF;
    }

    float f16(long offset) {
        return Float.float16ToFloat(data.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, offset));
    }
}
