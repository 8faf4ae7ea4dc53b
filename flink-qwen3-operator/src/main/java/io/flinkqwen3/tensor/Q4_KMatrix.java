package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * ggml Q4_K (144 bytes per 256 weights): d, dmin (f16), 12 bytes of 6-bit sub-block scales and
 * mins, 128 bytes of nibbles. Four 64-weight chunks; chunk c reads qs[32c..32c+31], low nibbles
 * with scale 2c, high nibbles with scale 2c+1; w = d*sc*q - dmin*m.
 */
public final class Q4_KMatrix extends KQuantMatrix {
    Q4_KMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.Q4_K;
    }

    @Override
    void dequantizeBlock(long block, float[] out, int outOff) {
        float d = f16(block), dmin = f16(block + 2);
        long scales = block + 4, qs = block + 16;
        for (int chunk = 0; chunk < 4; chunk++) {
            int j = 2 * chunk;
            float d1 = d * scaleK4(scales, j), m1 = dmin * minK4(scales, j);
            float d2 = d * scaleK4(scales, j + 1), m2 = dmin * minK4(scales, j + 1);
            for (int l = 0; l < 32; l++) {
                int q = u8(qs + 32L * chunk + l);
                out[outOff + 64 * chunk + l] = d1 * (q & 15) - m1;
                out[outOff + 64 * chunk + 32 + l] = d2 * (q >> 4) - m2;
            }
        }
    }
}
