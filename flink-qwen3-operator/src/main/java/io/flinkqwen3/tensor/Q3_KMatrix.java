package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * ggml Q3_K (110 bytes per 256 weights): hmask[32] (the third bit of each quant, cleared meaning
 * minus 4), qs[64] of 2-bit quants, 12 bytes of 16 packed 6-bit sub-block scales (offset by 32),
 * then d (f16). Two 128-weight halves, each reading 32 bytes of qs four times (bits 0-1 .. 6-7) with
 * hmask bit 4*half + shift/2, 16 weights per sub-block; w = d * (sc - 32) * (q - (bit ? 0 : 4))
 * (ggml dequantize_row_q3_K).
 */
public final class Q3_KMatrix extends KQuantMatrix {
    Q3_KMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.Q3_K;
    }

    @Override
    void dequantizeBlock(long block, float[] out, int outOff) {
        float d = f16(block + 108);
        int y = outOff, sub = 0, bit = 0;
        for (int half = 0; half < 2; half++) {
            long qs = block + 32 + 32L * half;
            for (int shift = 0; shift < 8; shift += 2, bit++) {
                for (int part = 0; part < 2; part++, sub++) {
                    float dl = d * (scale(block + 96, sub) - 32);
                    for (int l = 0; l < 16; l++) {
                        int q = u8(qs + 16 * part + l) >> shift & 3;
                        int high = u8(block + 16 * part + l) >> bit & 1;
                        out[y++] = dl * (q - (high == 0 ? 4 : 0));
                    }
                }
            }
        }
    }

    /**
     * 6-bit scale i (0..15) of the 12 bytes at {@code s}: its low 4 bits from byte i % 8 (low
     * nibble for i < 8, high for the rest), its high 2 bits from byte 8 + i % 4, bits 2 * (i / 4).
     */
    private int scale(long s, int i) {
        int low = i < 8 ? u8(s + i) & 15 : u8(s + i - 8) >> 4;
        return low | (u8(s + 8 + i % 4) >> 2 * (i / 4) & 3) << 4;
    }
}
