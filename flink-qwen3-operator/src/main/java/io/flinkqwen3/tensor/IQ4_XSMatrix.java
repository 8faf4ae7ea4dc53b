package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * ggml IQ4_XS (136 bytes per 256 weights): d (f16), the high 2 bits of eight 6-bit sub-block
 * scales (a little-endian uint16, 2 bits each), their low 4 bits (4 bytes, a nibble each), then
 * qs[128]: per 32-weight sub-block 16 bytes whose low nibbles index weights 0..15 and high nibbles
 * 16..31 into {@link IQ4_NLMatrix#LEVELS}; w = d * (sc - 32) * level (ggml dequantize_row_iq4_xs).
 */
public final class IQ4_XSMatrix extends KQuantMatrix {
    IQ4_XSMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.IQ4_XS;
    }

    @Override
    void dequantizeBlock(long block, float[] out, int outOff) {
        float d = f16(block);
        int high = u8(block + 2) | u8(block + 3) << 8;
        for (int sub = 0; sub < 8; sub++) {
            int sc = (u8(block + 4 + sub / 2) >> 4 * (sub % 2) & 15) | (high >> 2 * sub & 3) << 4;
            float dl = d * (sc - 32);
            long qs = block + 8 + 16L * sub;
            for (int j = 0; j < 16; j++) {
                int q = u8(qs + j);
                out[outOff + 32 * sub + j] = dl * IQ4_NLMatrix.LEVELS[q & 15];
                out[outOff + 32 * sub + 16 + j] = dl * IQ4_NLMatrix.LEVELS[q >> 4];
            }
        }
    }
}
