package io.flinkqwen3.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Our reading of each ggml block format against llama.cpp's own: random blocks (2 rows of 512
 * weights, finite f16 scales of either sign) and the weights gguf-py (llama.cpp's Python package,
 * gguf/quants.py) dequantizes them to, written by src/test/resources/ggml-blocks/gen.py. The stored
 * matrix must give the same floats; the packed one the same, or for the types and blocks that are
 * requantized into int8 panels, within half an int8 step of the block (KernelsTest holds the
 * kernels of every panel type to its packed weights: int8 through Q8_0, Q5_0, Q5_K and Q6_K).
 */
class GgmlBlocksTest {
    private static final int ROWS = 2, COLS = 512;

    @ParameterizedTest
    @EnumSource(value = DType.class, mode = EnumSource.Mode.EXCLUDE, names = {"F32", "F16", "BF16"})
    void weightsMatchLlamaCppsDequantization(DType type) throws IOException {
        byte[] blocks = resource(type + ".blocks");
        float[] expected = new float[ROWS * COLS];
        ByteBuffer.wrap(resource(type + ".f32")).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(expected);
        assertEquals(type.byteSize((long) ROWS * COLS), blocks.length, type + ".blocks size");
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            MemorySegment seg = arena.allocate(blocks.length);
            MemorySegment.copy(blocks, 0, seg, ValueLayout.JAVA_BYTE, 0, blocks.length);
            Matrix stored = Matrix.of(type, seg, ROWS, COLS);
            Matrix packed = PackedMatrix.pack(stored, parallel, arena);
            float[] row = new float[COLS];
            for (int r = 0; r < ROWS; r++) {
                stored.rowTo(r, row, 0);
                for (int c = 0; c < COLS; c++) {
                    assertEquals(expected[r * COLS + c], row[c], type + " stored weight (" + r + ", " + c + ")");
                }
                packed.rowTo(r, row, 0);
                for (int c = 0; c < COLS; c++) {
                    assertEquals(expected[r * COLS + c], row[c], halfInt8Step(type, expected, r, c),
                            type + " packed weight (" + r + ", " + c + ")");
                }
            }
        }
    }

    /**
     * 0 for the types whose panels keep the file's quants and scales (Q4_0, Q5_0, IQ4_NL, Q4_K), else
     * half an int8 step of the weight's 32-column block, the step being max |w| / 127 rounded up to
     * an f16 (the others are requantized, and so is a Q8_0 block with a negative scale).
     */
    private static double halfInt8Step(DType type, float[] weights, int r, int c) {
        if (type == DType.Q4_0 || type == DType.Q5_0 || type == DType.IQ4_NL || type == DType.Q4_K) {
            return 0;
        }
        double max = 0;
        for (int i = c / 32 * 32; i < c / 32 * 32 + 32; i++) {
            max = Math.max(max, Math.abs(weights[r * COLS + i]));
        }
        return KernelsTest.halfInt8Step(max);
    }

    private static byte[] resource(String name) throws IOException {
        try (InputStream in = GgmlBlocksTest.class.getResourceAsStream("/ggml-blocks/" + name)) {
            if (in == null) {
                throw new IOException("test resource /ggml-blocks/" + name + " is missing (see gen.py there)");
            }
            return in.readAllBytes();
        }
    }
}
