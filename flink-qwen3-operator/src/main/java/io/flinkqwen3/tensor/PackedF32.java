package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;

/** fp32 in panels: per column, the P rows' weights. */
final class PackedF32 extends PackedMatrix {
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final int COLUMN_BYTES = 4 * P;

    PackedF32(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, panelBytes(cols), MATVEC_ROWS);
    }

    static long panelBytes(int cols) {
        return (long) cols * COLUMN_BYTES;
    }

    @Override
    public DType type() {
        return DType.F32;
    }

    private FloatVector column(long offset) {
        return FloatVector.fromMemorySegment(F, data, offset, LE);
    }

    @Override
    void matvec(int group, float[] x, int xOff, float[] out) {
        long b0 = offset(4 * group, 0, COLUMN_BYTES), b1 = b0 + COLUMN_BYTES, b2 = b1 + COLUMN_BYTES, b3 = b2 + COLUMN_BYTES, step = 4L * COLUMN_BYTES;
        var a0 = FloatVector.zero(F);
        var a1 = FloatVector.zero(F);
        var a2 = FloatVector.zero(F);
        var a3 = FloatVector.zero(F);
        for (int k = 0; k < cols; k++, b0 += step, b1 += step, b2 += step, b3 += step) {
            var xv = FloatVector.broadcast(F, x[xOff + k]);
            a0 = column(b0).fma(xv, a0);
            a1 = column(b1).fma(xv, a1);
            a2 = column(b2).fma(xv, a2);
            a3 = column(b3).fma(xv, a3);
        }
        a0.intoArray(out, 0);
        a1.intoArray(out, P);
        a2.intoArray(out, 2 * P);
        a3.intoArray(out, 3 * P);
    }

    @Override
    void dequantize(int panel, int k0, int kc, float[] buf, int off, int stride) {
        long offset = offset(panel, k0, COLUMN_BYTES);
        for (int k = 0; k < kc; k++, offset += 4L * COLUMN_BYTES) {
            column(offset).intoArray(buf, off + k * stride);
        }
    }

    @Override
    float weight(int row, int col) {
        return data.get(ValueLayout.JAVA_FLOAT_UNALIGNED, offset(row / P, col, COLUMN_BYTES) + 4L * (row % P));
    }

    @Override
    void packPanel(Matrix source, int panel) {
        float[] row = new float[cols];
        for (int lane = 0; lane < P && panel * P + lane < rows; lane++) {
            source.rowTo(panel * P + lane, row, 0);
            long to = offset(panel, 0, COLUMN_BYTES) + 4L * lane;
            for (int k = 0; k < cols; k++, to += 4L * COLUMN_BYTES) {
                checkFiniteWeight(row[k], panel * P + lane, k);
                data.set(ValueLayout.JAVA_FLOAT_UNALIGNED, to, row[k]);
            }
        }
    }
}
