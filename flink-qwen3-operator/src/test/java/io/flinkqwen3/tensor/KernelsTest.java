package io.flinkqwen3.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every kernel against a plain scalar reference on random data: odd sizes (vector tails), several
 * shapes and batch sizes (the 4-row tiles and their remainders). Weight references are written
 * from the format descriptions (QWEN3-SPEC.md section 7), independently of the kernels.
 */
class KernelsTest {
    static final SplittableRandom RANDOM = new SplittableRandom(7);

    static float[] random(int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (RANDOM.nextDouble() * 2 - 1);
        }
        return x;
    }

    /**
     * Whether m multiplies row {@code row} of a batch of this size against quantized inputs ({@link
     * #inputAsMultiplied}): packed Q4_0 every row of a streamed batch, packed Q4_K the rows its 16-bit
     * one- and two-row kernels take (a batch of one or two, or the last one or two rows after the
     * eight- and four-row passes; the four-row kernel multiplies fp32 inputs).
     */
    static boolean quantizesInput(Matrix m, int batch, int row) {
        if (!(m instanceof PackedMatrix) || batch > PackedMatrix.STREAM_ROWS) {
            return false;
        }
        return m.type() == DType.Q4_0 || m.type() == DType.Q4_K && row >= batch - PackedMatrix.streamedTail(batch);
    }

    /**
     * The inputs as a matrix multiplies them: rows that {@link #quantizesInput} have each 32-column
     * block quantized as ggml's Q8_0 quantizes activations (d = max |x| / 127, x_q = x / d rounded to
     * nearest even, x_q * d multiplied; Q4_K's min terms, {@link #q4kMin}, against x as it is);
     * everything else multiplies x as it is.
     */
    static float[] inputAsMultiplied(Matrix m, float[] x, int batch, int cols) {
        float[] q = x.clone();
        for (int from = 0; from < batch * cols; from += 32) {
            if (!quantizesInput(m, batch, from / cols)) {
                continue;
            }
            float max = 0;
            for (int k = from; k < from + 32; k++) {
                max = Math.max(max, Math.abs(x[k]));
            }
            float d = max < 0x1p-100f ? 0 : max / 127; // tinier blocks count as zeros
            for (int k = from; k < from + 32; k++) {
                q[k] = d == 0 ? 0 : (float) Math.rint(x[k] * (1 / d)) * d;
            }
        }
        return q;
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 15, 16, 17, 64, 100, 1027})
    void elementwiseKernelsMatchScalarCode(int n) {
        float[] a = random(n), b = random(n);
        double dot = 0, ss = 0;
        for (int i = 0; i < n; i++) {
            dot += (double) a[i] * b[i];
            ss += (double) a[i] * a[i];
        }
        assertEquals(dot, Kernels.dot(a, 0, b, 0, n), 1e-4 * n);

        float[] w = random(n), out = new float[n];
        Kernels.rmsnorm(out, 0, a, 0, w, 1e-6f, n);
        double inv = 1 / Math.sqrt(ss / n + 1e-6);
        for (int i = 0; i < n; i++) {
            assertEquals(w[i] * a[i] * inv, out[i], 1e-4 * Math.max(1, Math.abs(w[i] * a[i] * inv)), "rmsnorm " + i);
        }

        float[] y = b.clone();
        Kernels.axpy(0.37f, a, 0, y, 0, n);
        for (int i = 0; i < n; i++) {
            assertEquals(b[i] + 0.37f * a[i], y[i], 1e-6);
        }

        float[] gate = a.clone();
        Kernels.siluAndMultiply(gate, b, n);
        for (int i = 0; i < n; i++) {
            double silu = a[i] / (1 + Math.exp(-a[i]));
            assertEquals(silu * b[i], gate[i], 1e-5);
        }

        float[] p = a.clone();
        Kernels.softmax(p, 0, n);
        double z = 0;
        for (float v : a) {
            z += Math.exp(v);
        }
        for (int i = 0; i < n; i++) {
            assertEquals(Math.exp(a[i]) / z, p[i], 1e-6);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 16, 64, 128})
    void ropeRotatesHalfPairs(int d) {
        float[] x = random(d), cos = random(d / 2), sin = random(d / 2);
        float[] r = x.clone();
        Kernels.rope(r, 0, cos, sin, d);
        for (int j = 0; j < d / 2; j++) {
            assertEquals(x[j] * cos[j] - x[j + d / 2] * sin[j], r[j], 1e-6);
            assertEquals(x[j + d / 2] * cos[j] + x[j] * sin[j], r[j + d / 2], 1e-6);
        }
    }

    /** Random storage for a [rows, cols] matrix of this type, with sane f16 scales. */
    static MemorySegment randomWeights(DType type, int rows, int cols, Arena arena) {
        long bytes = type.byteSize((long) rows * cols);
        MemorySegment seg = arena.allocate(bytes);
        for (long i = 0; i < bytes; i++) {
            seg.set(ValueLayout.JAVA_BYTE, i, (byte) RANDOM.nextInt(256));
        }
        long blocks = bytes / type.blockBytes();
        for (long blk = 0; blk < blocks; blk++) {
            long o = blk * type.blockBytes();
            switch (type) {
                case F32 -> {
                    for (int i = 0; i < 1; i++) {
                        seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o, (float) (RANDOM.nextDouble() * 2 - 1));
                    }
                }
                case F16 -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16((float) (RANDOM.nextDouble() * 2 - 1)));
                case BF16 -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o,
                        (short) (Float.floatToIntBits((float) (RANDOM.nextDouble() * 2 - 1)) >>> 16));
                case Q8_0 -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16((float) RANDOM.nextDouble() * 0.1f));
                // either sign: ggml's Q4_0 scale is max / -8, negative whenever the block's extreme is positive
                case Q4_0 -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16((float) (RANDOM.nextDouble() * 0.2 - 0.1)));
                case Q5_0 -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16((float) (RANDOM.nextDouble() * 0.2 - 0.1)));
                case Q4_K, Q5_K -> { // either sign, which ggml never writes but a file may hold
                    seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16((float) (RANDOM.nextDouble() * 0.02 - 0.01)));
                    seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + 2, Float.floatToFloat16((float) (RANDOM.nextDouble() * 0.02 - 0.01)));
                }
                case Q6_K -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + 208, Float.floatToFloat16((float) RANDOM.nextDouble() * 0.01f));
            }
        }
        return seg;
    }

    static int u8(MemorySegment s, long o) {
        return s.get(ValueLayout.JAVA_BYTE, o) & 0xFF;
    }

    static float f16(MemorySegment s, long o) {
        return Float.float16ToFloat(s.get(ValueLayout.JAVA_SHORT_UNALIGNED, o));
    }

    /**
     * Output (b, r) of m times a batch of inputs x against the dot product of weights row r with
     * input row b as m multiplies it ({@link #inputAsMultiplied}: {@code multiplied}; Q4_K's min
     * terms against x as it is), within 1e-5 of the terms' magnitude.
     */
    static void assertOutputMatches(Matrix m, MemorySegment seg, double[][] weights, float[] x, float[] multiplied, int batch, int b, int r,
            float actual, String what) {
        int cols = weights[r].length;
        boolean q4kQuantized = m.type() == DType.Q4_K && quantizesInput(m, batch, b);
        double expected = 0, magnitude = 0;
        for (int c = 0; c < cols; c++) {
            double min = q4kQuantized ? q4kMin(seg, cols, r, c) : 0;
            double term = (weights[r][c] + min) * multiplied[b * cols + c] - min * x[b * cols + c];
            expected += term;
            magnitude += Math.abs(term);
        }
        assertEquals(expected, actual, 1e-5 * Math.max(1, magnitude), what + " batch " + batch + " (" + b + ", " + r + ")");
    }

    /** The min term dmin * m_j of Q4_K weight (r, c) (the weight is d * sc_j * q - dmin * m_j). */
    static double q4kMin(MemorySegment s, int cols, int r, int c) {
        long index = (long) r * cols + c;
        long block = index / 256 * DType.Q4_K.blockBytes();
        int i = (int) (index % 256), j = 2 * (i / 64) + (i % 64 >= 32 ? 1 : 0);
        long sc = block + 4;
        int min = j < 4 ? u8(s, sc + j + 4) & 63 : (u8(s, sc + j + 4) >> 4) | ((u8(s, sc + j) >> 6) << 4);
        return f16(s, block + 2) * min;
    }

    /** Weight (r, c) straight from the format description. */
    static double reference(DType type, MemorySegment s, int cols, int r, int c) {
        long index = (long) r * cols + c;
        long block = index / type.blockElements() * type.blockBytes();
        int i = (int) (index % type.blockElements());
        return switch (type) {
            case F32 -> s.get(ValueLayout.JAVA_FLOAT_UNALIGNED, index * 4);
            case F16 -> Float.float16ToFloat(s.get(ValueLayout.JAVA_SHORT_UNALIGNED, index * 2));
            case BF16 -> Float.intBitsToFloat((s.get(ValueLayout.JAVA_SHORT_UNALIGNED, index * 2) & 0xFFFF) << 16);
            case Q8_0 -> f16(s, block) * s.get(ValueLayout.JAVA_BYTE, block + 2 + i);
            case Q4_0 -> f16(s, block) * ((i < 16 ? u8(s, block + 2 + i) & 15 : u8(s, block + 2 + i - 16) >> 4) - 8);
            case Q5_0 -> {
                int low = i < 16 ? u8(s, block + 6 + i) & 15 : u8(s, block + 6 + i - 16) >> 4;
                int high = s.get(ValueLayout.JAVA_INT_UNALIGNED, block + 2) >>> i & 1;
                yield f16(s, block) * ((low | high << 4) - 16);
            }
            case Q4_K, Q5_K -> { // Q5_K: Q4_K's layout with qh[32] (the fifth bits) before the nibbles
                int chunk = i / 64, l = i % 32;
                int j = 2 * chunk + (i % 64 >= 32 ? 1 : 0);
                long sc = block + 4;
                int scale = j < 4 ? u8(s, sc + j) & 63 : (u8(s, sc + j + 4) & 15) | ((u8(s, sc + j - 4) >> 6) << 4);
                int min = j < 4 ? u8(s, sc + j + 4) & 63 : (u8(s, sc + j + 4) >> 4) | ((u8(s, sc + j) >> 6) << 4);
                boolean five = type == DType.Q5_K;
                int q = u8(s, block + (five ? 48 : 16) + 32L * chunk + l);
                q = (i % 64 >= 32 ? q >> 4 : q & 15) | (five ? (u8(s, block + 16 + l) >> j & 1) << 4 : 0);
                yield f16(s, block) * scale * q - f16(s, block + 2) * min;
            }
            case Q6_K -> {
                int half = i / 128, within = i % 128, group = within / 32, l = within % 32;
                long ql = block + 64L * half, qh = block + 128 + 32L * half, sc = block + 192 + 8L * half;
                int low = group % 2 == 0 ? u8(s, ql + l) : u8(s, ql + l + 32);
                low = group < 2 ? low & 15 : low >> 4;
                int high = (u8(s, qh + l) >> (2 * group)) & 3;
                int scale = s.get(ValueLayout.JAVA_BYTE, sc + l / 16 + 2 * group);
                yield f16(s, block + 208) * scale * ((low | (high << 4)) - 32);
            }
            // the other ggml types are held to llama.cpp's own reading of them (GgmlBlocksTest)
            default -> throw new IllegalArgumentException("no format description here for " + type);
        };
    }

    /**
     * Q5_K and Q6_K become int8 panels with f16 scales of 32-column blocks (Q8_0 and Q5_0 keep their
     * quants, Q4_K its own panels).
     */
    static boolean requantizedWhenPacked(DType type) {
        return type == DType.Q6_K || type == DType.Q5_K;
    }

    /**
     * How far a requantized weight may be from the stored one: half an int8 step of its 32-column
     * block, the step being max |w| / 127 rounded up to an f16 (by at most 2^-10 of it, or 2^-24
     * where it is an f16 subnormal).
     */
    static double halfInt8Step(DType type, MemorySegment seg, int cols, int r, int c) {
        double blockMax = 0;
        for (int i = c / 32 * 32; i < c / 32 * 32 + 32; i++) {
            blockMax = Math.max(blockMax, Math.abs(reference(type, seg, cols, r, i)));
        }
        return halfInt8Step(blockMax);
    }

    /** Half an int8 step of a block whose largest |weight| is {@code blockMax} (see above). */
    static double halfInt8Step(double blockMax) {
        return 0.5 * (blockMax / 127 * (1 + 0x1p-10) + 0x1p-24);
    }

    /**
     * Both forms of every type — as stored and repacked into panels — against the format
     * description: single rows, every batch path (1, padded tiles, several tiles, a column count
     * spanning several dequantized chunks) and rows that do not fill a panel group. Q5_K and Q6_K
     * are requantized to int8 panels: their packed weights may differ by half an int8 step of their
     * 32-column block, and their products are checked against those weights.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "Q4_K", "Q5_K", "Q6_K"})
    void matmulMatchesTheFormatDescription(DType type) {
        int[] colsChoices = type.quantized() ? new int[] {type.blockElements(), 3 * type.blockElements(), 512}
                : new int[] {1, 37, 100, 256, 544};
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            for (int cols : colsChoices) {
                if (cols % type.blockElements() != 0) {
                    continue;
                }
                for (int rows : new int[] {7, 70}) {
                    MemorySegment seg = randomWeights(type, rows, cols, arena);
                    Matrix stored = Matrix.of(type, seg, rows, cols);
                    Matrix packed = PackedMatrix.pack(stored, parallel, arena);
                    assertEquals(cols % 32 == 0, packed instanceof PackedMatrix, type + " packs");
                    for (Matrix m : new Matrix[] {stored, packed}) {
                        String what = type + (m instanceof PackedMatrix ? " packed" : " stored") + " [" + rows + ", " + cols + "]";
                        boolean requantized = m instanceof PackedMatrix && requantizedWhenPacked(type);
                        float[] row = new float[cols];
                        double[][] weights = new double[rows][cols];
                        for (int r = 0; r < rows; r++) {
                            m.rowTo(r, row, 0);
                            for (int c = 0; c < cols; c++) {
                                double exact = reference(type, seg, cols, r, c);
                                double tolerance = 1e-6 * Math.max(1, Math.abs(row[c]))
                                        + (requantized ? halfInt8Step(type, seg, cols, r, c) : 0);
                                assertEquals(exact, row[c], tolerance, what + " weight (" + r + ", " + c + ")");
                                weights[r][c] = requantized ? row[c] : exact;
                            }
                        }
                        for (int batch : new int[] {1, 2, 3, 4, 5, 6, 9, 13}) {
                            float[] x = random(batch * cols), out = new float[batch * rows];
                            m.matmul(x, batch, out, parallel);
                            float[] multiplied = inputAsMultiplied(m, x, batch, cols);
                            for (int b = 0; b < batch; b++) {
                                for (int r = 0; r < rows; r++) {
                                    assertOutputMatches(m, seg, weights, x, multiplied, batch, b, r, out[b * rows + r], what);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * The eight-row pass gives each of its rows bit for bit what two four-row passes give it, for
     * every type (int8's own kernel, the others' default), whichever passes this CPU's steps take
     * ({@link PackedMatrix#EIGHT_ROW_PASSES}); 14 blocks of 32 columns, as the one-row tail case.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q6_K", "Q4_0", "Q4_K", "BF16", "F16", "F32"})
    void eightRowPassEqualsTwoFourRowPasses(DType type) {
        int cols = type.blockElements() == 256 ? 512 : 14 * 32, rows = 2 * PackedMatrix.GROUP;
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(1)) {
            var packed = (PackedMatrix) PackedMatrix.pack(Matrix.of(type, randomWeights(type, rows, cols, arena), rows, cols), parallel, arena);
            float[] x = packed.streamInput(random(8 * cols), 8);
            int stride = packed.streamStride(), group = PackedMatrix.GROUP;
            for (int g = 0; g < rows / group; g++) {
                float[] eight = new float[8 * group], four = new float[8 * group], half = new float[4 * group];
                packed.matvec8(g, x, 0, stride, eight);
                for (int h = 0; h < 2; h++) {
                    int first = 4 * h * stride;
                    packed.matvec4(g, x, first, first + stride, first + 2 * stride, first + 3 * stride, half);
                    System.arraycopy(half, 0, four, 4 * h * group, 4 * group);
                }
                for (int r = 0; r < 8; r++) { // each row's outputs were written (the buffers start as zeros)
                    int from = r * group;
                    assertTrue(java.util.stream.IntStream.range(from, from + group).anyMatch(i -> four[i] != 0), type + " row " + r);
                }
                assertArrayEquals(four, eight, type + " group " + g);
            }
        }
    }

    /**
     * Every batch size from 1 to 17, and 33 and 40, through the packed kernels (the streaming
     * multi-row kernels for 1, 2, 4 and 8 rows, three rows as four, and the dequantize-and-tile path
     * above {@link PackedMatrix#MATVEC_ROWS} or {@link PackedMatrix#STREAM_ROWS}; BF16 and F16
     * stream every batch) against a scalar reference, with row counts that leave the last panel group ragged; and
     * a streamed row's result is bit for bit the one it gets alone (when the kernels multiply it alike: {@link #quantizesInput}).
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q5_0", "Q5_K", "Q6_K", "Q4_0", "Q4_K", "BF16", "F16", "F32"})
    void everyBatchSizeMatchesTheScalarReference(DType type) {
        // more columns than one dequantized chunk (KC), so the tiles also start mid-row; for 32-weight
        // blocks 14 of them, so that the one-row int8 pass has a tail after its four streams of 3
        int cols = Math.max(type.blockElements(), 128) * 3 + (type.blockElements() == 32 ? 64 : 0), rows = 2 * PackedMatrix.GROUP + 13;
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            MemorySegment seg = randomWeights(type, rows, cols, arena);
            Matrix packed = PackedMatrix.pack(Matrix.of(type, seg, rows, cols), parallel, arena);
            float[] row = new float[cols];
            double[][] weights = new double[rows][cols];
            for (int r = 0; r < rows; r++) {
                packed.rowTo(r, row, 0);
                for (int c = 0; c < cols; c++) {
                    double exact = reference(type, seg, cols, r, c);
                    assertEquals(exact, row[c], 1e-6 * Math.max(1, Math.abs(row[c]))
                            + (requantizedWhenPacked(type) ? halfInt8Step(type, seg, cols, r, c) : 0), type + " weight (" + r + ", " + c + ")");
                    weights[r][c] = requantizedWhenPacked(type) ? row[c] : exact;
                }
            }
            for (int batch : java.util.stream.IntStream.concat(java.util.stream.IntStream.rangeClosed(1, 17),
                    java.util.stream.IntStream.of(PackedMatrix.STREAM_ROWS + 1, 40)).toArray()) {
                float[] x = random(batch * cols), out = new float[batch * rows], alone = new float[rows];
                packed.matmul(x, batch, out, parallel);
                float[] multiplied = inputAsMultiplied(packed, x, batch, cols);
                for (int b = 0; b < batch; b++) {
                    for (int r = 0; r < rows; r++) {
                        assertOutputMatches(packed, seg, weights, x, multiplied, batch, b, r, out[b * rows + r], type.toString());
                    }
                    boolean streamed = type == DType.BF16 || type == DType.F16 || batch <= (type == DType.F32 ? PackedMatrix.MATVEC_ROWS : PackedMatrix.STREAM_ROWS);
                    if (streamed && quantizesInput(packed, batch, b) == quantizesInput(packed, 1, 0)) { // multiplied as it is alone
                        packed.matmul(java.util.Arrays.copyOfRange(x, b * cols, (b + 1) * cols), 1, alone, parallel);
                        assertArrayEquals(alone, java.util.Arrays.copyOfRange(out, b * rows, (b + 1) * rows),
                                type + " batch " + batch + ": row " + b + " differs from the same row alone");
                    }
                }
            }
        }
    }

    /**
     * The packed kernels read every f16 block scale exactly (they decode f16 with integer shifts,
     * a mask and a multiply, not with a conversion instruction): one block per row whose only
     * non-zero weight is 1 x its scale, times x = (1, 0, ...) in every batch path, must give
     * Float.float16ToFloat(scale). Q4_0 keeps every finite f16, either sign; Q8_0 every finite
     * non-negative one (a negative Q8_0 scale is requantized: {@link #aNegativeQ8_0ScaleIsRequantizedWithinHalfAStep}).
     * F16 weights are decoded the same way: there the one weight of a row is the f16 itself.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0", "F16"})
    void everyFiniteF16ScaleIsReadExactly(DType type) {
        short[] scales = f16s(type);
        int rows = scales.length, cols = 32;
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            MemorySegment seg = arena.allocate(type.byteSize((long) rows * cols));
            for (int r = 0; r < rows; r++) {
                long o = (long) r * type.byteSize(cols); // a row: one block of 32, or 32 halves
                seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, scales[r]);
                if (type == DType.F16) {
                    continue; // weight (r, 0) is the f16, the rest stay 0
                }
                if (type == DType.Q8_0) {
                    seg.set(ValueLayout.JAVA_BYTE, o + 2, (byte) 1); // quants 1, 0, 0, ...
                } else {
                    for (int i = 0; i < 16; i++) { // nibbles store q + 8: 9 (weight 1) in column 0, 8 (0) elsewhere
                        seg.set(ValueLayout.JAVA_BYTE, o + 2 + i, (byte) (i == 0 ? 0x89 : 0x88));
                    }
                }
            }
            Matrix packed = PackedMatrix.pack(Matrix.of(type, seg, rows, cols), parallel, arena);
            for (int batch : new int[] {1, 2, 4, PackedMatrix.STREAM_ROWS + 1}) {
                float[] x = new float[batch * cols], out = new float[batch * rows];
                for (int b = 0; b < batch; b++) {
                    x[b * cols] = b + 1;
                }
                packed.matmul(x, batch, out, parallel);
                for (int b = 0; b < batch; b++) {
                    for (int r = 0; r < rows; r++) {
                        float expected = Float.float16ToFloat(scales[r]) * (b + 1);
                        if (expected != out[b * rows + r]) { // one assertion per mismatch: 63488 rows
                            assertEquals(expected, out[b * rows + r], type + " batch " + batch + ": scale 0x" + Integer.toHexString(scales[r] & 0xFFFF));
                        }
                    }
                }
            }
        }
    }

    @Test
    void logSumExpIsTheLogOfTheSoftmaxNormalizer() {
        float[] x = {Float.NaN, 1000f, 1000f, 999f, Float.NaN};
        // large logits: exp(1000) overflows a double, the max-subtracted sum does not
        assertEquals(1000 + Math.log(2 + Math.exp(-1)), Kernels.logSumExp(x, 1, 3), 1e-9);
        var random = new SplittableRandom(7);
        float[] logits = new float[1000];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) random.nextDouble(-20, 20);
            sum += Math.exp(logits[i]);
        }
        assertEquals(Math.log(sum), Kernels.logSumExp(logits, 0, logits.length), 1e-9);
        assertTrue(Double.isNaN(Kernels.logSumExp(x, 0, 2)), "a NaN logit makes the sum NaN");
    }

    /**
     * Q4_K's d and dmin, every finite f16 of either sign, read exactly in every batch path: per f16
     * one row whose only non-zero weight is d * 1 * 1 (sub-block scale 1, quant 1, column 0), and
     * one whose first sub-block is all -dmin * 1 (min 1, scale 0), times x = (1, 0, ...).
     */
    @Test
    void everyFiniteQ4_KdAndDminIsReadExactly() {
        short[] halves = f16s(DType.Q4_K);
        int n = halves.length, rows = 2 * n, cols = 256, blockBytes = DType.Q4_K.blockBytes();
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            MemorySegment seg = arena.allocate((long) rows * blockBytes);
            for (int r = 0; r < rows; r++) {
                long o = (long) r * blockBytes;
                boolean d = r < n;
                seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o + (d ? 0 : 2), halves[r % n]);
                seg.set(ValueLayout.JAVA_BYTE, o + 4 + (d ? 0 : 4), (byte) 1); // scale 0 or min 0 (get_scale_min_k4, j < 4)
                seg.set(ValueLayout.JAVA_BYTE, o + 16, (byte) (d ? 1 : 0)); // quant 1 in column 0
            }
            Matrix packed = PackedMatrix.pack(Matrix.of(DType.Q4_K, seg, rows, cols), parallel, arena);
            for (int batch : new int[] {1, 2, 4, PackedMatrix.STREAM_ROWS + 1}) {
                float[] x = new float[batch * cols], out = new float[batch * rows];
                for (int b = 0; b < batch; b++) {
                    x[b * cols] = b + 1;
                }
                packed.matmul(x, batch, out, parallel);
                for (int b = 0; b < batch; b++) {
                    for (int r = 0; r < rows; r++) {
                        float half = Float.float16ToFloat(halves[r % n]);
                        float expected = (r < n ? half : -half) * (b + 1);
                        if (expected != out[b * rows + r]) { // one assertion per mismatch: 126976 rows
                            assertEquals(expected, out[b * rows + r], "Q4_K batch " + batch + ": " + (r < n ? "d" : "dmin") + " 0x"
                                    + Integer.toHexString(halves[r % n] & 0xFFFF));
                        }
                    }
                }
            }
        }
    }

    /** The finite f16 scales the packed layout of {@code type} keeps as they are, in order. */
    private static short[] f16s(DType type) {
        int[] bits = java.util.stream.IntStream.range(0, 1 << 16)
                .filter(h -> Float.isFinite(Float.float16ToFloat((short) h)) && (type != DType.Q8_0 || h < 0x8000)).toArray();
        short[] scales = new short[bits.length];
        for (int i = 0; i < bits.length; i++) {
            scales[i] = (short) bits[i];
        }
        return scales;
    }

    /**
     * ggml never writes a negative Q8_0 scale, but a file may hold one (or -0): the panels keep
     * scales non-negative, so such a block is requantized from its weights, each within half an
     * int8 step of the block (max |w| / 127, rounded to f16).
     */
    @Test
    void aNegativeQ8_0ScaleIsRequantizedWithinHalfAStep() {
        int rows = 3, cols = 64;
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            MemorySegment seg = randomWeights(DType.Q8_0, rows, cols, arena);
            seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 0, Float.floatToFloat16(-0.03f));
            seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2L * DType.Q8_0.blockBytes(), (short) 0x8000); // -0
            Matrix packed = PackedMatrix.pack(Matrix.of(DType.Q8_0, seg, rows, cols), parallel, arena);
            float[] row = new float[cols];
            for (int r = 0; r < rows; r++) {
                packed.rowTo(r, row, 0);
                for (int c = 0; c < cols; c++) {
                    assertEquals(reference(DType.Q8_0, seg, cols, r, c), row[c], 1e-6 + halfInt8Step(DType.Q8_0, seg, cols, r, c),
                            "weight (" + r + ", " + c + ")");
                }
            }
        }
    }

    /** A requantized block whose int8 scale would not fit an f16 is refused, saying so. */
    @Test
    void aRequantizedScaleBeyondF16IsRefused() {
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            MemorySegment seg = randomWeights(DType.Q6_K, 1, 256, arena);
            seg.asSlice(0, 192).fill((byte) 0); // every quant q = 0: weight d * sc * (0 - 32)
            seg.asSlice(192, 16).fill((byte) 127); // sub-block scales sc
            seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 208, Float.floatToFloat16(60000f)); // d: weights -2.4e8
            // packing runs in parallel: the refusal arrives as the cause of the loop's exception
            var e = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class,
                    () -> PackedMatrix.pack(Matrix.of(DType.Q6_K, seg, 1, 256), parallel, arena));
            var damaged = org.junit.jupiter.api.Assertions.assertInstanceOf(PackedMatrix.DamagedWeightsException.class, e.getCause());
            org.junit.jupiter.api.Assertions.assertTrue(damaged.getMessage().contains("beyond an f16's range"), damaged.getMessage());
        }
    }

    /** A weight stored as a float that is NaN or infinite is refused at packing, naming its row and column. */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"BF16", "F16", "F32"})
    void aNonFiniteFloatWeightIsRefused(DType type) {
        int rows = 20, cols = 64, row = 17, col = 45;
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
                MemorySegment seg = randomWeights(type, rows, cols, arena);
                long at = (long) (row * cols + col) * type.blockBytes();
                switch (type) {
                    case BF16 -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, (short) (Float.floatToRawIntBits(bad) >>> 16));
                    case F16 -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, Float.floatToFloat16(bad));
                    default -> seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, at, bad);
                }
                var e = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class,
                        () -> PackedMatrix.pack(Matrix.of(type, seg, rows, cols), parallel, arena));
                var damaged = e instanceof PackedMatrix.DamagedWeightsException d ? d
                        : org.junit.jupiter.api.Assertions.assertInstanceOf(PackedMatrix.DamagedWeightsException.class, e.getCause());
                org.junit.jupiter.api.Assertions.assertEquals("row 17, column 45: the weight is " + bad + ", not a finite number",
                        damaged.getMessage());
            }
        }
    }

    /**
     * A Q4_K super-block whose d or dmin is not a number is refused, saying which of the two; a
     * requantized type's (Q5_K) names the first weight that decodes to NaN.
     */
    @Test
    void aNonFiniteQ4_KdOrDminIsRefusedByName() {
        int rows = 20, cols = 512, row = 17;
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            for (int field : new int[] {0, 2}) {
                MemorySegment seg = randomWeights(DType.Q4_K, rows, cols, arena);
                seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, (long) row * DType.Q4_K.byteSize(cols) + DType.Q4_K.blockBytes() + field,
                        Float.floatToFloat16(Float.NaN));
                var e = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class,
                        () -> PackedMatrix.pack(Matrix.of(DType.Q4_K, seg, rows, cols), parallel, arena));
                var damaged = e instanceof PackedMatrix.DamagedWeightsException d ? d
                        : org.junit.jupiter.api.Assertions.assertInstanceOf(PackedMatrix.DamagedWeightsException.class, e.getCause());
                org.junit.jupiter.api.Assertions.assertEquals("row 17, the block of columns from 256: its "
                        + (field == 0 ? "scale" : "min scale (dmin)") + " is NaN, not a finite number", damaged.getMessage());
            }
            // Q5_K is requantized from its decoded weights: the first weight of the block that is not a number is named
            MemorySegment seg = randomWeights(DType.Q5_K, rows, cols, arena);
            seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, (long) row * DType.Q5_K.byteSize(cols) + DType.Q5_K.blockBytes() + 2,
                    Float.floatToFloat16(Float.NaN));
            var e = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class,
                    () -> PackedMatrix.pack(Matrix.of(DType.Q5_K, seg, rows, cols), parallel, arena));
            var damaged = e instanceof PackedMatrix.DamagedWeightsException d ? d
                    : org.junit.jupiter.api.Assertions.assertInstanceOf(PackedMatrix.DamagedWeightsException.class, e.getCause());
            org.junit.jupiter.api.Assertions.assertEquals("row 17, column 256: the weight decodes to NaN (a scale or min of the"
                    + " file's Q5_K block is not a finite number)", damaged.getMessage());
        }
    }

    /**
     * A NaN or infinite input makes its row's outputs non-finite, also where the kernels quantize
     * the input (packed Q4_0, and Q4_K alone: a block's d is then NaN or infinite), alone and in a batch; the other
     * rows stay finite.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q4_0", "Q4_K", "Q8_0"})
    void aNonFiniteInputGivesNonFiniteOutputs(DType type) {
        int rows = 70, cols = 256;
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            Matrix packed = PackedMatrix.pack(Matrix.of(type, randomWeights(type, rows, cols, arena), rows, cols), parallel, arena);
            float[] x = random(3 * cols);
            x[5] = Float.NaN;
            x[cols + 40] = Float.POSITIVE_INFINITY;
            float[] out = new float[3 * rows], alone = new float[rows];
            packed.matmul(x, 3, out, parallel);
            for (int b = 0; b < 3; b++) {
                packed.matmul(java.util.Arrays.copyOfRange(x, b * cols, (b + 1) * cols), 1, alone, parallel);
                for (int r = 0; r < rows; r++) {
                    assertEquals(b < 2, !Float.isFinite(out[b * rows + r]), type + " batch 3, row " + b + ", output " + r + ": " + out[b * rows + r]);
                    assertEquals(b < 2, !Float.isFinite(alone[r]), type + " alone, row " + b + ", output " + r + ": " + alone[r]);
                }
            }
        }
    }

    /**
     * Packed Q4_0's 16-bit sums at their limits: every nibble 15 or every nibble 0 (weights 7 and
     * -8 times the scale) against inputs all +1 or all -1 (x_q = +-127: a lane's sum reaches
     * +-16256 and a row's two lanes +-32512), and a block of inputs below 2^-100, which counts as
     * zeros (its 1 / d would overflow).
     */
    @Test
    void q4_0SixteenBitSumsAtTheirLimits() {
        int rows = 70, cols = 96;
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            for (int nibbles : new int[] {0xFF, 0x00}) {
                MemorySegment seg = arena.allocate(DType.Q4_0.byteSize((long) rows * cols), 64);
                for (long o = 0; o < seg.byteSize(); o += DType.Q4_0.blockBytes()) {
                    seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, o, Float.floatToFloat16(0.5f));
                    for (int i = 0; i < 16; i++) {
                        seg.set(ValueLayout.JAVA_BYTE, o + 2 + i, (byte) nibbles);
                    }
                }
                Matrix packed = PackedMatrix.pack(Matrix.of(DType.Q4_0, seg, rows, cols), parallel, arena);
                float weight = nibbles == 0xFF ? 3.5f : -4f;
                for (float sign : new float[] {1, -1}) {
                    float[] x = new float[2 * cols];
                    java.util.Arrays.fill(x, 0, cols, sign);
                    java.util.Arrays.fill(x, cols, cols + 32, sign * 1e-38f); // row 1: a tiny block, then zeros
                    float[] out = new float[2 * rows];
                    packed.matmul(x, 2, out, parallel);
                    for (int r = 0; r < rows; r++) {
                        assertEquals(weight * sign * cols, out[r], 1e-5 * Math.abs(weight) * cols, "nibbles " + nibbles + ", x " + sign + ", row " + r);
                        assertEquals(0f, out[rows + r], "nibbles " + nibbles + ", x " + sign + ", a tiny block, row " + r);
                    }
                }
            }
        }
    }

    /** Several matrices in one parallel loop give what each gives alone (bit for bit: the same kernels per group). */
    @Test
    void matmulAllEqualsOneMatmulPerMatrix() {
        try (Arena arena = Arena.ofShared(); Parallel parallel = new Parallel(2)) {
            int cols = 256;
            DType[] types = {DType.Q8_0, DType.BF16, DType.Q4_0, DType.Q4_K, DType.Q4_K}; // two Q4_K share one prepared input
            int[] rows = {70, 128, 16, 40, 70};
            Matrix[] ws = new Matrix[types.length];
            for (int i = 0; i < ws.length; i++) {
                ws[i] = PackedMatrix.pack(Matrix.of(types[i], randomWeights(types[i], rows[i], cols, arena), rows[i], cols), parallel, arena);
            }
            for (int batch : new int[] {1, 6, 7}) {
                float[] x = random(batch * cols);
                float[][] outs = new float[ws.length][];
                for (int i = 0; i < ws.length; i++) {
                    outs[i] = new float[batch * rows[i]];
                }
                Matrix.matmulAll(parallel, x, batch, ws, outs);
                for (int i = 0; i < ws.length; i++) {
                    float[] alone = new float[batch * rows[i]];
                    ws[i].matmul(x, batch, alone, parallel);
                    assertArrayEquals(alone, outs[i], types[i] + " batch " + batch);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"Q8_0", "Q4_0"})
    void quantizersRoundTripWithinOneStep(DType type) {
        int n = 256;
        float[] x = random(n);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(type.byteSize(n));
            if (type == DType.Q8_0) {
                Q8_0Matrix.quantize(x, 0, n, seg, 0);
            } else {
                Q4_0Matrix.quantize(x, 0, n, seg, 0);
            }
            float[] back = new float[n];
            Matrix.of(type, seg, 1, n).rowTo(0, back, 0);
            for (int i = 0; i < n; i++) {
                float step = Math.abs(f16(seg, (long) (i / 32) * type.blockBytes()));
                // half a step from rounding; Q4_0's 16 levels are asymmetric (-8..7), so the extreme of the
                // other sign than the block's largest magnitude clamps at 7 steps: up to one step off
                double tolerance = (type == DType.Q8_0 ? 0.5 : 1.0) * step + 1e-3;
                assertEquals(x[i], back[i], tolerance, type + " element " + i);
            }
        }
    }
}
