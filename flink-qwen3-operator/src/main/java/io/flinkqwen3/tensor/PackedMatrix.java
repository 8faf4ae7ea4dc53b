package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Weights repacked once at load into <em>panels</em> of {@link #P} rows (one float vector of
 * outputs) interleaved column by column, the layout the kernels want (as llama.cpp repacks Q4_0 into
 * 8-row interleaved blocks for its AVX-512/AMX kernels).
 *
 * <p>Why: in ggml's row-major blocks a dot product widens bytes with lane-crossing conversions and
 * ends in a horizontal sum per row; with panels one load holds {@link #P} rows' weights of one
 * column of four panels (int8: a byte of each int) or of eight columns of one panel (Q4_0, Q4_K: a
 * nibble each), widening is an integer operation or two (and a convert, except for Q4_0, and Q4_K
 * one or two rows at a time, which multiply in 16-bit integers), and the kernels multiply a whole vector of output rows by one
 * broadcast input value, with no horizontal sums.
 * Measured on the 151936x1024 output matrix of Qwen3-0.6B (read from DRAM), AMD EPYC Zen 4, 2
 * threads: Q8_0 7 -> 39 G weights/s, Q4_0 7 -> 43, BF16 63 GB/s, the DRAM read rate
 * ({@link Kernels#readBandwidth}: 61).
 *
 * <p>Two paths: a few input rows (decode steps of up to {@link #STREAM_ROWS} sequences, and the
 * one to four tokens an MoE expert gets per step; {@link #MATVEC_ROWS} for F32, which has no
 * multi-row kernels; every batch for BF16 and F16) stream the weights through type-specific kernels over
 * four panels that decode each weight once for up to four input rows, eight for int8 ({@link #matvec},
 * {@link #matvec2}, {@link #matvec4}, {@link #matvec8});
 * a larger batch dequantizes {@link #KC} columns of four panels into an fp32 buffer once and runs
 * the {@link Kernels#tile6x4} register tile (6 input rows x 4 panels, 24 accumulators) over the
 * batch, near the fp32 FMA peak.
 *
 * <p>Rows are padded with zero rows to a multiple of {@link #GROUP}; columns must be a multiple of 32
 * (of 256 for Q4_K, as its format already requires).
 * The storage lives off-heap ({@link NativeMemory}) until the arena given to {@link #pack} closes.
 */
public abstract sealed class PackedMatrix extends Matrix permits PackedF32, PackedHalves, PackedInt8, PackedQ4_0, PackedQ4_K {
    /** Rows per panel: the float lanes of this CPU. */
    static final int P = F.length();
    /** Rows one kernel call produces: four panels. */
    static final int GROUP = 4 * P;
    /**
     * Columns per dequantized chunk in the batched path: 4 panels x 256 columns x 4 bytes = 64 KB at
     * 16 lanes, in L2 (measured: 64 is 25% slower at batch 16-64, 512 the same).
     */
    static final int KC = 256;
    /** Input rows per register tile in the batched path. */
    static final int MB = 6;
    /**
     * Up to this many input rows, types without multi-row kernels (F32) stream the group's
     * weights through {@link #matvec} row after row (from L1/L2 after the first row) instead of
     * dequantizing them for the tiles: measured on Qwen3-0.6B Q8_0 before the multi-row kernels,
     * batches of 2-4 took longer per step than 4 single rows through the tiles.
     */
    static final int MATVEC_ROWS = 8;
    /**
     * Up to this many input rows, types with multi-row kernels (int8, Q4_0, Q4_K, F16 and BF16 panels)
     * stream the weights four rows per pass (int8 on Intel: eight, {@link #EIGHT_ROW_PASSES}):
     * measured on 4096x2048 and 151936x2048 Q8_0 matrices, 2 threads, AMD EPYC Zen 4, the 4-row passes ran at 69-77 G weight-rows/s from 8 to 32 rows, the tiles at 47
     * (12 rows), 54-55 (16), 65 (24), 70 (32), 85 (64); since the passes cover all four panels with
     * f16 scales, 81-88 at 8 and 16 rows (4096x2048); since int8 quants are decoded by shift and
     * mask, 92-96 at 16 rows (4096x2048), the tiles 67 (151936x2048). BF16 and F16 stream every batch
     * ({@link PackedBF16}, {@link PackedF16}).
     */
    static final int STREAM_ROWS = 32;

    /**
     * Whether steps of eight or more rows take eight per pass ({@link #matvec8}) rather than two
     * four-row passes: on Intel cores with 512-bit vectors only, where the int8 decode's shifts and
     * converts share one port (p0) and decoding once per eight rows paid (Xeon, family 6 model 207,
     * MatBench Q8_0 4096x2048 16 rows: 66-71 -> 82-90 G weight-rows/s). On AMD Zen 4 an eight-row
     * two-panel int8 kernel ran slower (84 against 96 at 16 rows; docs/performance-history.md), and
     * with 16 vector registers (AVX2) its accumulators would spill. Results are the same either way.
     */
    static final boolean EIGHT_ROW_PASSES = P == 16 && intelCpu();

    private static final ThreadLocal<float[]> CHUNK = ThreadLocal.withInitial(() -> new float[KC * GROUP]);
    private static final ThreadLocal<float[]> TILE = ThreadLocal.withInitial(() -> new float[Math.max(MB, 8) * GROUP]); // a tile, or a matvec8 pass

    protected final int groups;
    /** Batches up to this many rows stream through the matvec kernels, larger ones run the tiles (MAX_VALUE: none). */
    private final int streamRows;
    /** Bytes of one panel (P rows, all columns). */
    protected final long panelBytes;

    PackedMatrix(MemorySegment data, int rows, int cols, long panelBytes, int streamRows) {
        super(data, rows, cols);
        this.streamRows = streamRows;
        this.groups = (rows + GROUP - 1) / GROUP;
        this.panelBytes = panelBytes;
    }

    /**
     * The fast layout for {@code m}, packed in parallel: F32 as fp32 panels, F16 as f16 panels, BF16
     * as bf16 panels, Q4_0 and Q4_K as 4-bit panels, the other ggml types as int8 panels ({@link PackedInt8}). Only
     * matrices whose rows are not whole 32-column blocks stay as they are. The packed copy lives in
     * {@code arena}.
     */
    public static Matrix pack(Matrix m, Parallel parallel, Arena arena) {
        if (m instanceof PackedMatrix || m.cols() % 32 != 0) {
            return m;
        }
        int panels = (m.rows() + GROUP - 1) / GROUP * 4;
        PackedMatrix packed = switch (m.type()) {
            case F32 -> new PackedF32(allocate(arena, panels, PackedF32.panelBytes(m.cols())), m.rows(), m.cols());
            case F16 -> new PackedF16(allocate(arena, panels, PackedHalves.panelBytes(m.cols())), m.rows(), m.cols());
            case BF16 -> new PackedBF16(allocate(arena, panels, PackedHalves.panelBytes(m.cols())), m.rows(), m.cols());
            case Q8_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q5_K, Q6_K, IQ4_XS -> new PackedInt8(allocate(arena, panels, PackedInt8.panelBytes(m.cols())), m.rows(), m.cols(), m.type());
            case Q4_K -> new PackedQ4_K(allocate(arena, panels, PackedQ4_K.panelBytes(m.cols())), m.rows(), m.cols());
            case Q4_0 -> new PackedQ4_0(allocate(arena, panels, PackedQ4_0.panelBytes(m.cols())), m.rows(), m.cols());
        };
        parallel.forEach(panels, p -> packed.packPanel(m, p));
        return packed;
    }

    private static MemorySegment allocate(Arena arena, int panels, long panelBytes) {
        return NativeMemory.allocate(panels * panelBytes, arena);
    }

    /**
     * Byte offset of unit {@code unit} (a block, column pair or column of {@code unitBytes} bytes) of
     * panel {@code panel}. The four panels of a group are interleaved unit by unit, so that the
     * kernels, which always read a group's four panels together, read one sequential stream
     * (measured: with the panels apart, the hardware prefetchers lost the four streams between tiles).
     */
    final long offset(int panel, long unit, int unitBytes) {
        return (long) (panel / 4) * 4 * panelBytes + (unit * 4 + panel % 4) * unitBytes;
    }

    /**
     * Refuses a block scale that is not a finite number (what a corrupt file holds; it would turn
     * every output of its rows into NaN), naming the row and columns.
     */
    static void checkFinite(float scale, int row, int col) {
        checkFinite(scale, "scale", row, col);
    }

    /** {@link #checkFinite(float, int, int)} for a block's other f16 fields, {@code what} naming it ("min scale (dmin)"). */
    static void checkFinite(float value, String what, int row, int col) {
        if (!Float.isFinite(value)) {
            throw new DamagedWeightsException("row " + row + ", the block of columns from " + col + ": its " + what + " is " + value
                    + ", not a finite number");
        }
    }

    /**
     * Refuses a weight stored as a float (F32, F16, BF16) that is not a finite number, naming its row
     * and column: one NaN turns every output it meets into NaN, and greedy decoding then emits
     * token 0 forever.
     *
     * @throws DamagedWeightsException "row R, column C: the weight is NaN, not a finite number"
     */
    public static void checkFiniteWeight(float weight, int row, int col) {
        if (!Float.isFinite(weight)) {
            throw new DamagedWeightsException("row " + row + ", column " + col + ": the weight is " + weight + ", not a finite number");
        }
    }

    /**
     * A matrix's data the panels cannot hold: a weight or block scale that is not a finite number
     * (what a corrupt file holds), or a requantized block whose scale is beyond an f16's range. Thrown by
     * {@link #pack}.
     */
    public static final class DamagedWeightsException extends IllegalArgumentException {
        DamagedWeightsException(String message) {
            super(message);
        }
    }

    /** Copies rows [panel*P, panel*P + P) of {@code source} into panel {@code panel}; rows past the end stay zero. */
    abstract void packPanel(Matrix source, int panel);

    /**
     * The input rows x ([batch, cols]) in the form this type's streaming kernels read ({@link
     * #matvec}, {@link #matvec2}, {@link #matvec4}, {@link #matvec8}): rows of {@link #streamStride} floats. This
     * default passes x as it is.
     */
    float[] streamInput(float[] x, int batch) {
        return x;
    }

    /** Floats per row of {@link #streamInput}. */
    int streamStride() {
        return cols;
    }

    /**
     * out[0 .. GROUP) = the dot products of the four panels of group {@code group} with the input
     * row at x[xOff ..] (a row of {@link #streamInput}): one pass over their weights.
     */
    abstract void matvec(int group, float[] x, int xOff, float[] out);

    /**
     * {@link #matvec} for two input rows at x0 and x1 at once, each weight decoded once for both:
     * out[0 .. GROUP) for x0, out[GROUP .. 2*GROUP) for x1. Each row's result is bit for bit what
     * matvec gives it (the same sums in the same order), so a row's output does not depend on the
     * batch it came in (except for Q4_K, whose {@link #matvec4} multiplies fp32 inputs where matvec
     * and matvec2 multiply int8 ones). This default, for types without a kernel of their own, runs
     * matvec per row.
     */
    void matvec2(int group, float[] x, int x0, int x1, float[] out) {
        matvecEach(group, x, new int[] {x0, x1}, out);
    }

    /** {@link #matvec2} for four input rows: out[i*GROUP .. (i+1)*GROUP) for the row at xi. */
    void matvec4(int group, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        matvecEach(group, x, new int[] {x0, x1, x2, x3}, out);
    }

    /**
     * {@link #matvec4} for the eight input rows at x0, x0 + stride, ..., x0 + 7 stride:
     * out[i*GROUP .. (i+1)*GROUP) for row i. This default runs two four-row passes: rows 4-7
     * first, moved up, then rows 0-3 in place (no buffer).
     */
    void matvec8(int group, float[] x, int x0, int stride, float[] out) {
        int x4 = x0 + 4 * stride;
        matvec4(group, x, x4, x4 + stride, x4 + 2 * stride, x4 + 3 * stride, out);
        System.arraycopy(out, 0, out, 4 * GROUP, 4 * GROUP);
        matvec4(group, x, x0, x0 + stride, x0 + 2 * stride, x0 + 3 * stride, out);
    }

    private void matvecEach(int group, float[] x, int[] offsets, float[] out) {
        float[] one = new float[GROUP];
        for (int i = 0; i < offsets.length; i++) {
            matvec(group, x, offsets[i], one);
            System.arraycopy(one, 0, out, i * GROUP, GROUP);
        }
    }

    /**
     * Writes columns [k0, k0 + kc) of panel {@code panel} as floats: column k's P rows at buf[off +
     * k*stride ..], for the tiles. Types whose every batch streams (BF16, F16) never get here.
     */
    void dequantize(int panel, int k0, int kc, float[] buf, int off, int stride) {
        throw new IllegalStateException(type() + " panels stream every batch; they have no dequantized tiles");
    }

    /** Weight (row, col) as a float. */
    abstract float weight(int row, int col);

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        for (int c = 0; c < cols; c++) {
            out[outOff + c] = weight(row, c);
        }
    }

    @Override
    public void matmul(float[] in, int batch, float[] out, Parallel parallel) {
        matmulAll(parallel, in, batch, new PackedMatrix[] {this}, new float[][] {out});
    }

    /** {@link Matrix#matmulAll} for packed matrices: one parallel loop over the row groups of all of them. */
    static void matmulAll(Parallel parallel, float[] in, int batch, PackedMatrix[] ws, float[][] outs) {
        int[] firstGroup = new int[ws.length + 1];
        for (int i = 0; i < ws.length; i++) {
            firstGroup[i + 1] = firstGroup[i] + ws[i].groups;
        }
        // tiles of 6 input rows; a tail of up to 4 rows runs in a 4-row tile, a tail of 5 in a 6-row one
        int cols = ws[0].cols(), tail = batch % MB, full = batch - tail;
        boolean tiles = false;
        for (PackedMatrix w : ws) {
            tiles |= batch > w.streamRows;
        }
        int padded = tiles ? full + (tail == 0 ? 0 : tail <= 4 ? 4 : MB) : batch;
        float[] x = padded == batch ? in : Arrays.copyOf(in, padded * cols);
        float[][] streamed = new float[ws.length][]; // each streaming matrix's input in its kernels' form, once per type
        for (int i = 0; i < ws.length; i++) {
            if (batch > ws[i].streamRows) {
                continue;
            }
            for (int j = 0; j < i && streamed[i] == null; j++) {
                if (streamed[j] != null && ws[j].getClass() == ws[i].getClass()) {
                    streamed[i] = streamed[j];
                }
            }
            if (streamed[i] == null) {
                streamed[i] = ws[i].streamInput(x, batch);
            }
        }
        parallel.forEach(firstGroup[ws.length], unit -> {
            int i = 0;
            while (unit >= firstGroup[i + 1]) {
                i++;
            }
            PackedMatrix m = ws[i];
            int g = unit - firstGroup[i];
            if (batch <= m.streamRows) {
                m.matvecRows(g, streamed[i], batch, outs[i]);
            } else {
                m.multiplyGroup(g, x, batch, full, padded, outs[i]);
            }
        });
    }

    /**
     * out rows [g*GROUP, ..) for every input row, streaming the group's weights: eight rows per pass
     * while eight are left ({@link #matvec8}, where {@link #EIGHT_ROW_PASSES}), then four ({@link
     * #matvec4}; three rows run as four, the last one twice, as decoding the weights costs more than
     * the multiply-adds of the extra row), then the {@link #streamedTail} in {@link #matvec2} or
     * {@link #matvec}.
     */
    private void matvecRows(int g, float[] x, int batch, float[] out) {
        float[] tile = TILE.get();
        int r0 = g * GROUP, valid = Math.min(GROUP, rows - r0), stride = streamStride();
        int tail = streamedTail(batch), last = batch - 1;
        for (int b = 0, n; b < batch; b += n) {
            n = Math.min(EIGHT_ROW_PASSES && b + 8 <= batch - tail ? 8 : 4, batch - b);
            if (n == 8) {
                matvec8(g, x, b * stride, stride, tile);
            } else if (b < batch - tail) {
                matvec4(g, x, b * stride, Math.min(b + 1, last) * stride, Math.min(b + 2, last) * stride, Math.min(b + 3, last) * stride, tile);
            } else if (n == 2) {
                matvec2(g, x, b * stride, (b + 1) * stride, tile);
            } else {
                matvec(g, x, b * stride, tile);
            }
            for (int i = 0; i < n; i++) {
                System.arraycopy(tile, i * GROUP, out, (b + i) * rows + r0, valid);
            }
        }
    }

    /**
     * How many of a streamed batch's rows the one- and two-row kernels take: the whole batch of one
     * or two, else the one or two rows left after the eight- and four-row passes (none when three are left:
     * they run as four). {@link #streamInput} may prepare those rows differently (Q4_K).
     */
    static int streamedTail(int batch) {
        return batch <= 2 ? batch : batch % 4 == 3 ? 0 : batch % 4;
    }

    /** The first vendor_id of /proc/cpuinfo is Intel's (false where it cannot be read). */
    private static boolean intelCpu() {
        try (var lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("vendor_id")).findFirst().map(l -> l.endsWith("GenuineIntel")).orElse(false);
        } catch (IOException | UncheckedIOException e) {
            return false;
        }
    }

    /** out rows [g*GROUP, ..) for every input row: dequantize KC columns of the group once, then tile the batch. */
    private void multiplyGroup(int g, float[] x, int batch, int full, int padded, float[] out) {
        float[] chunk = CHUNK.get(), tile = TILE.get();
        int r0 = g * GROUP, valid = Math.min(GROUP, rows - r0);
        for (int k0 = 0; k0 < cols; k0 += KC) {
            int kc = Math.min(KC, cols - k0);
            for (int p = 0; p < 4; p++) {
                dequantize(4 * g + p, k0, kc, chunk, p * P, GROUP);
            }
            for (int b = 0; b < padded; b += MB) {
                if (b < full || padded - b == MB) {
                    Kernels.tile6x4(chunk, kc, x, b * cols + k0, cols, tile);
                } else {
                    Kernels.tile4x4(chunk, kc, x, b * cols + k0, cols, tile);
                }
                for (int i = 0; i < MB && b + i < batch; i++) {
                    int o = (b + i) * rows + r0;
                    if (k0 == 0) {
                        System.arraycopy(tile, i * GROUP, out, o, valid);
                    } else {
                        Kernels.add(tile, i * GROUP, out, o, valid);
                    }
                }
            }
        }
    }

    @Override
    public long byteSize() {
        return data.byteSize();
    }
}
