package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * ggml Q4_1: blocks of 32 weights, an f16 scale d and an f16 offset m, then 16 bytes whose low
 * nibbles are weights 0..15 and high nibbles 16..31; w = d * nibble + m (ggml dequantize_row_q4_1).
 */
public final class Q4_1Matrix extends Block32Matrix {
    Q4_1Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.Q4_1;
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = row * rowBytes;
        for (int c = 0; c < cols; c += BLOCK, base += DType.Q4_1.blockBytes()) {
            float d = scale(base), m = f16(base + 2);
            for (int j = 0; j < 16; j++) {
                int q = u8(base + 4 + j);
                out[outOff + c + j] = d * (q & 15) + m;
                out[outOff + c + 16 + j] = d * (q >> 4) + m;
            }
        }
    }
}
