package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * ggml Q2_K (84 bytes per 256 weights): 16 bytes of sub-block scales (low nibble) and mins (high
 * nibble), qs[64] of 2-bit quants, then d and dmin (f16). Two 128-weight halves, each reading 32
 * bytes of qs four times (bits 0-1, 2-3, 4-5, 6-7), 16 weights per sub-block; w = d*sc*q - dmin*m
 * (ggml dequantize_row_q2_K).
 */
public final class Q2_KMatrix extends KQuantMatrix {
    Q2_KMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.Q2_K;
    }

    @Override
    void dequantizeBlock(long block, float[] out, int outOff) {
        float d = f16(block + 80), dmin = f16(block + 82);
        int y = outOff, sub = 0;
        for (int half = 0; half < 2; half++) {
            long qs = block + 16 + 32L * half;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; part++, sub++) {
                    int sc = u8(block + sub);
                    float dl = d * (sc & 15), ml = dmin * (sc >> 4);
                    for (int l = 0; l < 16; l++) {
                        out[y++] = dl * (u8(qs + 16 * part + l) >> shift & 3) - ml;
                    }
                }
            }
        }
    }
}
