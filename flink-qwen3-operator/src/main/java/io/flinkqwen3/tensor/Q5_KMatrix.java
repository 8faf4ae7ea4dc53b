package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * ggml Q5_K (176 bytes per 256 weights): d, dmin (f16), 12 bytes of 6-bit sub-block scales and
 * mins (packed as Q4_K's), qh[32] high bits, qs[128] low nibbles. Four 64-weight chunks; chunk c
 * reads qs[32c..32c+31], low nibbles with scale 2c and high bit (qh[l] >> 2c) & 1, high nibbles
 * with scale 2c+1 and high bit (qh[l] >> 2c+1) & 1; w = d*sc*(nibble + 16*bit) - dmin*m (ggml
 * dequantize_row_q5_K).
 */
public final class Q5_KMatrix extends KQuantMatrix {
    Q5_KMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.Q5_K;
    }

    @Override
    void dequantizeBlock(long block, float[] out, int outOff) {
        float d = f16(block), dmin = f16(block + 2);
        long scales = block + 4, qh = block + 16, qs = block + 48;
        for (int chunk = 0; chunk < 4; chunk++) {
            int j = 2 * chunk;
            float d1 = d * scaleK4(scales, j), m1 = dmin * minK4(scales, j);
            float d2 = d * scaleK4(scales, j + 1), m2 = dmin * minK4(scales, j + 1);
            for (int l = 0; l < 32; l++) {
                int q = u8(qs + 32L * chunk + l), h = u8(qh + l) >> j;
                out[outOff + 64 * chunk + l] = d1 * ((q & 15) | (h & 1) << 4) - m1;
                out[outOff + 64 * chunk + 32 + l] = d2 * ((q >> 4) | (h & 2) << 3) - m2;
            }
        }
    }
}
