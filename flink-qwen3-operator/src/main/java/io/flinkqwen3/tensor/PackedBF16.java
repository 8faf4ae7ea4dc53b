package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * bfloat16 in panels: per column pair (2k, 2k+1), P ints; int lane l holds row l's weight of column
 * 2k in its low half and of column 2k+1 in its high half. bf16 is the top half of an fp32, so a
 * shift (even column) or a mask (odd column) widens a whole vector exactly.
 */
final class PackedBF16 extends PackedMatrix {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final int PAIR_BYTES = 4 * P;

    PackedBF16(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, panelBytes(cols), MATVEC_ROWS);
    }

    static long panelBytes(int cols) {
        return (long) cols / 2 * PAIR_BYTES;
    }

    @Override
    public DType type() {
        return DType.BF16;
    }

    private IntVector pair(long offset) {
        return IntVector.fromMemorySegment(I, data, offset, LE);
    }

    private static FloatVector even(IntVector p) {
        return p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static FloatVector odd(IntVector p) {
        return p.and(0xFFFF0000).reinterpretAsFloats();
    }

    @Override
    void matvec(int group, float[] x, int xOff, float[] out) {
        long b0 = offset(4 * group, 0, PAIR_BYTES), b1 = b0 + PAIR_BYTES, b2 = b1 + PAIR_BYTES, b3 = b2 + PAIR_BYTES, step = 4L * PAIR_BYTES;
        // even and odd columns accumulate separately: eight independent chains
        var e0 = FloatVector.zero(F);
        var e1 = FloatVector.zero(F);
        var e2 = FloatVector.zero(F);
        var e3 = FloatVector.zero(F);
        var o0 = FloatVector.zero(F);
        var o1 = FloatVector.zero(F);
        var o2 = FloatVector.zero(F);
        var o3 = FloatVector.zero(F);
        for (int k = 0; k < cols; k += 2, b0 += step, b1 += step, b2 += step, b3 += step) {
            var xe = FloatVector.broadcast(F, x[xOff + k]);
            var xo = FloatVector.broadcast(F, x[xOff + k + 1]);
            var p0 = pair(b0);
            var p1 = pair(b1);
            var p2 = pair(b2);
            var p3 = pair(b3);
            e0 = even(p0).fma(xe, e0);
            o0 = odd(p0).fma(xo, o0);
            e1 = even(p1).fma(xe, e1);
            o1 = odd(p1).fma(xo, o1);
            e2 = even(p2).fma(xe, e2);
            o2 = odd(p2).fma(xo, o2);
            e3 = even(p3).fma(xe, e3);
            o3 = odd(p3).fma(xo, o3);
        }
        e0.add(o0).intoArray(out, 0);
        e1.add(o1).intoArray(out, P);
        e2.add(o2).intoArray(out, 2 * P);
        e3.add(o3).intoArray(out, 3 * P);
    }

    @Override
    void dequantize(int panel, int k0, int kc, float[] buf, int off, int stride) {
        long offset = offset(panel, k0 / 2, PAIR_BYTES);
        for (int k = 0; k < kc; k += 2, offset += 4L * PAIR_BYTES) {
            var p = pair(offset);
            even(p).intoArray(buf, off + k * stride);
            odd(p).intoArray(buf, off + (k + 1) * stride);
        }
    }

    @Override
    float weight(int row, int col) {
        int bits = data.get(ValueLayout.JAVA_INT_UNALIGNED, offset(row / P, col / 2, PAIR_BYTES) + 4L * (row % P));
        return Float.intBitsToFloat(col % 2 == 0 ? bits << 16 : bits & 0xFFFF0000);
    }

    @Override
    void packPanel(Matrix source, int panel) {
        var bf16 = (BF16Matrix) source;
        for (int lane = 0; lane < P && panel * P + lane < rows; lane++) {
            long from = (long) (panel * P + lane) * cols * 2, to = offset(panel, 0, PAIR_BYTES) + 4L * lane;
            for (int k = 0; k < cols; k += 2, from += 4, to += 4L * PAIR_BYTES) {
                data.set(ValueLayout.JAVA_INT_UNALIGNED, to, bf16.data.get(ValueLayout.JAVA_INT_UNALIGNED, from));
            }
        }
    }
}
