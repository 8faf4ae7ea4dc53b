package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * The k-quant formats (256-weight super-blocks with packed sub-block scales). Rows are dequantized
 * a super-block at a time; {@link PackedMatrix#pack} repacks Q4_K into 4-bit panels and
 * requantizes the others into int8 panels, and a matrix that stays as it is multiplies through
 * {@link Matrix}'s generic path.
 */
public abstract sealed class KQuantMatrix extends Matrix permits Q2_KMatrix, Q3_KMatrix, Q4_KMatrix, Q5_KMatrix, Q6_KMatrix, IQ4_XSMatrix {
    static final int BLOCK = 256;
    final long rowBytes;

    KQuantMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
        this.rowBytes = (long) cols / BLOCK * type().blockBytes();
    }

    /** Writes the 256 weights of the super-block at byte {@code offset} to out[outOff..]. */
    abstract void dequantizeBlock(long offset, float[] out, int outOff);

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = row * rowBytes;
        for (int c = 0; c < cols; c += BLOCK, base += type().blockBytes()) {
            dequantizeBlock(base, out, outOff + c);
        }
    }

    /** ggml's get_scale_min_k4 (Q4_K, Q5_K): 6-bit sub-block scale j (0..7) of the 12 packed bytes at {@code s}. */
    int scaleK4(long s, int j) {
        return j < 4 ? u8(s + j) & 63 : (u8(s + j + 4) & 15) | ((u8(s + j - 4) >> 6) << 4);
    }

    /** ggml's get_scale_min_k4: 6-bit sub-block min j (0..7) of the 12 packed bytes at {@code s}. */
    int minK4(long s, int j) {
        return j < 4 ? u8(s + j + 4) & 63 : (u8(s + j + 4) >> 4) | ((u8(s + j) >> 6) << 4);
    }
}
