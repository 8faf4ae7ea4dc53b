package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * ggml IQ4_NL: blocks of 32 weights, an f16 scale d, then 16 bytes whose low nibbles index weights
 * 0..15 and high nibbles 16..31 into a fixed non-linear table of 16 int8 levels; w = d *
 * level[nibble] (ggml dequantize_row_iq4_nl).
 */
public final class IQ4_NLMatrix extends Block32Matrix {
    /** ggml's kvalues_iq4nl. */
    static final byte[] LEVELS = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    IQ4_NLMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.IQ4_NL;
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = row * rowBytes;
        for (int c = 0; c < cols; c += BLOCK, base += DType.IQ4_NL.blockBytes()) {
            float d = scale(base);
            for (int i = 0; i < BLOCK; i++) {
                out[outOff + c + i] = d * quant(base, i);
            }
        }
    }

    /** Weight i (0..31) of the block at byte {@code block} without its scale: one of {@link #LEVELS}. */
    @Override
    int quant(long block, int i) {
        int q = u8(block + 2 + i % 16);
        return LEVELS[i < 16 ? q & 15 : q >> 4];
    }
}
