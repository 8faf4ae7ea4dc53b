package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * ggml Q5_1: blocks of 32 weights, an f16 scale d, an f16 offset m, 4 bytes qh (bit j: the fifth
 * bit of weight j, little-endian), then 16 bytes whose low nibbles are weights 0..15 and high
 * nibbles 16..31; w = d * (nibble + 16*bit) + m (ggml dequantize_row_q5_1).
 */
public final class Q5_1Matrix extends Block32Matrix {
    Q5_1Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.Q5_1;
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = row * rowBytes;
        for (int c = 0; c < cols; c += BLOCK, base += DType.Q5_1.blockBytes()) {
            float d = scale(base), m = f16(base + 2);
            int qh = data.get(ValueLayout.JAVA_INT_UNALIGNED, base + 4);
            for (int j = 0; j < 16; j++) {
                int q = u8(base + 8 + j);
                out[outOff + c + j] = d * ((q & 15) | (qh >>> j & 1) << 4) + m;
                out[outOff + c + 16 + j] = d * ((q >> 4) | (qh >>> (j + 16) & 1) << 4) + m;
            }
        }
    }
}
