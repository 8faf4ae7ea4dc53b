package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A 2-D weight matrix [rows, cols] in a {@link MemorySegment}: either as stored in the checkpoint
 * (row-major ggml/safetensors blocks, usually a slice of a memory-mapped file; one subclass per
 * storage type that can dequantize a row) or repacked at load for the kernels ({@link PackedMatrix},
 * which owns its fast kernels per type). Activations are always fp32 and accumulation is fp32.
 */
public abstract sealed class Matrix permits F32Matrix, BF16Matrix, F16Matrix, Block32Matrix, KQuantMatrix, PackedMatrix {
    /** Per-thread buffer for four weight rows unpacked to floats. */
    private static final ThreadLocal<float[]> ROW = ThreadLocal.withInitial(() -> new float[0]);

    protected final MemorySegment data;
    protected final int rows;
    protected final int cols;

    protected Matrix(MemorySegment data, int rows, int cols) {
        this.data = data;
        this.rows = rows;
        this.cols = cols;
    }

    public static Matrix of(DType type, MemorySegment data, int rows, int cols) {
        if (cols % type.blockElements() != 0) {
            throw new IllegalArgumentException("rows of " + cols + " weights cannot be stored as " + type
                    + " (blocks of " + type.blockElements() + ")");
        }
        long expected = type.byteSize((long) rows * cols);
        if (data.byteSize() != expected) {
            throw new IllegalArgumentException("matrix [" + rows + ", " + cols + "] of " + type + " needs "
                    + expected + " bytes, segment has " + data.byteSize());
        }
        return switch (type) {
            case F32 -> new F32Matrix(data, rows, cols);
            case BF16 -> new BF16Matrix(data, rows, cols);
            case F16 -> new F16Matrix(data, rows, cols);
            case Q8_0 -> new Q8_0Matrix(data, rows, cols);
            case Q4_0 -> new Q4_0Matrix(data, rows, cols);
            case Q4_1 -> new Q4_1Matrix(data, rows, cols);
            case Q5_0 -> new Q5_0Matrix(data, rows, cols);
            case Q5_1 -> new Q5_1Matrix(data, rows, cols);
            case IQ4_NL -> new IQ4_NLMatrix(data, rows, cols);
            case Q2_K -> new Q2_KMatrix(data, rows, cols);
            case Q3_K -> new Q3_KMatrix(data, rows, cols);
            case IQ4_XS -> new IQ4_XSMatrix(data, rows, cols);
            case Q4_K -> new Q4_KMatrix(data, rows, cols);
            case Q5_K -> new Q5_KMatrix(data, rows, cols);
            case Q6_K -> new Q6_KMatrix(data, rows, cols);
        };
    }

    /** The byte at {@code offset} of the data, unsigned. */
    int u8(long offset) {
        return data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, offset) & 0xFF;
    }

    /** The f16 at {@code offset} of the data (little-endian, as ggml writes it), as a float. */
    float f16(long offset) {
        return Float.float16ToFloat(data.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, offset));
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    public abstract DType type();

    /** Dequantizes row {@code row} into {@code out[outOff .. outOff+cols)}. */
    public abstract void rowTo(int row, float[] out, int outOff);

    /**
     * out[b, r] = dot(W[r], in[b]) for b in [0, batch): in is [batch, cols], out is [batch, rows].
     * This generic path unpacks four weight rows at a time to floats, once, and multiplies them with
     * every input row in 4x4 register tiles; {@link PackedMatrix} overrides it with faster kernels.
     */
    public void matmul(float[] in, int batch, float[] out, Parallel parallel) {
        int groups = (rows + 3) / 4;
        parallel.forEach(groups, g -> {
            int r0 = 4 * g, count = Math.min(4, rows - r0);
            float[] w = ROW.get();
            if (w.length < 4 * cols) {
                w = new float[4 * cols];
                ROW.set(w);
            }
            for (int i = 0; i < count; i++) {
                rowTo(r0 + i, w, i * cols);
            }
            int b = 0;
            if (count == 4) {
                for (; b + 4 <= batch; b += 4) {
                    Kernels.dot4x4(w, 0, in, b * cols, cols, out, b * rows + r0, rows);
                }
            }
            for (int i = 0; i < count; i++) {
                int bb = b;
                for (; bb + 4 <= batch; bb += 4) {
                    Kernels.dot4(w, i * cols, in, cols, bb * cols, out, bb * rows + r0 + i, rows);
                }
                for (; bb < batch; bb++) {
                    out[bb * rows + r0 + i] = Kernels.dot(w, i * cols, in, bb * cols, cols);
                }
            }
        });
    }

    /**
     * outs[i] = in x ws[i]^T for matrices with the same column count (in [batch, cols], outs[i]
     * [batch, ws[i].rows()]). Packed matrices run in one parallel loop over all their row groups:
     * one barrier for, say, a layer's q, k and v projections instead of three, and more work units
     * to balance; others one after the other.
     */
    public static void matmulAll(Parallel parallel, float[] in, int batch, Matrix[] ws, float[][] outs) {
        boolean packed = true;
        for (Matrix w : ws) {
            packed &= w instanceof PackedMatrix && w.cols == ws[0].cols;
        }
        if (packed) {
            PackedMatrix.matmulAll(parallel, in, batch, java.util.Arrays.copyOf(ws, ws.length, PackedMatrix[].class), outs);
        } else {
            for (int i = 0; i < ws.length; i++) {
                ws[i].matmul(in, batch, outs[i], parallel);
            }
        }
    }

    public long byteSize() {
        return data.byteSize();
    }
}
