package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * ggml Q5_0: blocks of 32 weights, an f16 scale d, 4 bytes qh (bit j: the fifth bit of weight j,
 * little-endian), then 16 bytes whose low nibbles are weights 0..15 and high nibbles 16..31;
 * w = d * (nibble + 16*bit - 16) (ggml dequantize_row_q5_0).
 */
public final class Q5_0Matrix extends Block32Matrix {
    static final int BLOCK_BYTES = 22;

    Q5_0Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.Q5_0;
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = row * rowBytes;
        for (int c = 0; c < cols; c += BLOCK, base += BLOCK_BYTES) {
            float d = scale(base);
            for (int i = 0; i < BLOCK; i++) {
                out[outOff + c + i] = d * quant(base, i);
            }
        }
    }

    /** Weight i (0..31) of the block at byte {@code block} without its scale: -16..15. */
    @Override
    int quant(long block, int i) {
        int qh = data.get(ValueLayout.JAVA_INT_UNALIGNED, block + 2);
        int q = u8(block + 6 + i % 16);
        return ((i < 16 ? q & 15 : q >> 4) | (qh >>> i & 1) << 4) - 16;
    }
}
