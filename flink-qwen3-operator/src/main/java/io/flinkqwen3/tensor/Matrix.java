package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A 2-D weight matrix [rows, cols] stored row-major in a {@link MemorySegment} (usually a slice of
 * a memory-mapped checkpoint). Each storage type is a subclass that owns its dot-product kernels;
 * activations are always fp32 and accumulation is fp32.
 */
public abstract sealed class Matrix permits F32Matrix, BF16Matrix, F16Matrix, Block32Matrix, KQuantMatrix {
    /** Batch rows that one pass over a weight row serves; the weights are read once for them. */
    static final int BATCH_TILE = 4;
    /**
     * Per-thread buffer for four unpacked weight rows: from {@link #unpackOnceFromBatch()} input rows
     * on, weight rows are unpacked once, four at a time, and multiplied with every input row from
     * there in 4x4 register tiles, instead of being unpacked again for every 4 input rows.
     */
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
            case Q4_K -> new Q4_KMatrix(data, rows, cols);
            case Q6_K -> new Q6_KMatrix(data, rows, cols);
        };
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    public abstract DType type();

    /**
     * Dot product of weight row {@code row} with {@code x[xOff .. xOff+cols)}, x in the layout
     * {@link #prepare} produced.
     */
    protected abstract float dot(int row, float[] x, int xOff);

    /**
     * Dot products of weight row {@code row} with four input rows of {@code x} (offsets a..d), the
     * weights read once; results go to {@code out[outIdx + k*outStride]}.
     */
    protected abstract void dot4(int row, float[] x, int a, int b, int c, int d, float[] out, int outIdx, int outStride);

    /** Writes the four results of a {@link #dot4} call. */
    protected static void store4(float[] out, int idx, int stride, float a, float b, float c, float d) {
        out[idx] = a;
        out[idx + stride] = b;
        out[idx + 2 * stride] = c;
        out[idx + 3 * stride] = d;
    }

    /** The input rearranged for this type's kernels (by default as it is). */
    protected float[] prepare(float[] in, int batch) {
        return in;
    }

    /** Dequantizes row {@code row} into {@code out[outOff .. outOff+cols)}. */
    public abstract void rowTo(int row, float[] out, int outOff);

    /**
     * out[b, r] = dot(W[r], in[b]) for b in [0, batch): in is [batch, cols], out is [batch, rows].
     * Rows are split over the pool's threads; each thread reads a weight row once per 4 batch rows.
     */
    public void matmul(float[] in, int batch, float[] out, Parallel parallel) {
        if (batch >= unpackOnceFromBatch()) {
            matmulDequantizingOnce(in, batch, out, parallel);
            return;
        }
        float[] x = prepare(in, batch);
        parallel.forEach(rows, r -> {
            int b = 0;
            for (; b + BATCH_TILE <= batch; b += BATCH_TILE) {
                dot4(r, x, b * cols, (b + 1) * cols, (b + 2) * cols, (b + 3) * cols, out, b * rows + r, rows);
            }
            for (; b < batch; b++) {
                out[b * rows + r] = dot(r, x, b * cols);
            }
        });
    }

    private void matmulDequantizingOnce(float[] in, int batch, float[] out, Parallel parallel) {
        float[] x = prepare(in, batch);
        int groups = (rows + 3) / 4;
        parallel.forEach(groups, g -> {
            int r0 = 4 * g, count = Math.min(4, rows - r0);
            float[] w = ROW.get();
            if (w.length < 4 * cols) {
                w = new float[4 * cols];
                ROW.set(w);
            }
            for (int i = 0; i < count; i++) {
                unpackRow(r0 + i, w, i * cols);
            }
            int b = 0;
            if (count == 4) {
                for (; b + BATCH_TILE <= batch; b += BATCH_TILE) {
                    Kernels.dot4x4(w, 0, x, b * cols, cols, out, b * rows + r0, rows);
                }
            }
            for (int i = 0; i < count; i++) {
                int bb = b;
                for (; bb + BATCH_TILE <= batch; bb += BATCH_TILE) {
                    Kernels.dot4(w, i * cols, x, cols, bb * cols, out, bb * rows + r0 + i, rows);
                }
                for (; bb < batch; bb++) {
                    out[bb * rows + r0 + i] = Kernels.dot(w, i * cols, x, bb * cols, cols);
                }
            }
        });
    }

    /**
     * The batch size from which unpacking rows once pays (measured per type with 3072x1024 matrices
     * on 2 threads: cheap widening such as BF16's and Q8_0's wins below 8 rows).
     */
    protected int unpackOnceFromBatch() {
        return 8;
    }

    /** Row {@code row} as floats, in the column order {@link #prepare} gives the input. */
    protected void unpackRow(int row, float[] out, int outOff) {
        rowTo(row, out, outOff);
    }

    public long byteSize() {
        return data.byteSize();
    }
}
