package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * ggml Q6_K (210 bytes per 256 weights): ql[128] low nibbles, qh[64] high 2-bit pairs, 16 int8
 * sub-block scales, then d (f16, last). Two 128-weight halves, each four 32-weight groups.
 */
public final class Q6_KMatrix extends KQuantMatrix {
    Q6_KMatrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    @Override
    public DType type() {
        return DType.Q6_K;
    }

    @Override
    void dequantizeBlock(long block, float[] out, int outOff) {
        float d = f16(block + 208);
        long ql = block, qh = block + 128, sc = block + 192;
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8) {
            int y = outOff + 128 * half;
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int h = u8(qh + l), lo0 = u8(ql + l), lo32 = u8(ql + l + 32);
                out[y + l] = d * scale(sc, is) * (((lo0 & 15) | ((h & 3) << 4)) - 32);
                out[y + l + 32] = d * scale(sc, is + 2) * (((lo32 & 15) | (((h >> 2) & 3) << 4)) - 32);
                out[y + l + 64] = d * scale(sc, is + 4) * (((lo0 >> 4) | (((h >> 4) & 3) << 4)) - 32);
                out[y + l + 96] = d * scale(sc, is + 6) * (((lo32 >> 4) | (((h >> 6) & 3) << 4)) - 32);
            }
        }
    }

    private int scale(long sc, int i) {
        return data.get(ValueLayout.JAVA_BYTE, sc + i);
    }
}
