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
 * Q4_0 in panels: per 32-column block, the P rows' scales as f32, then 4 chunks of P ints; int lane
 * l of chunk c holds row l's quants of columns 8c .. 8c+7, one per nibble, stored as (q - 8) in
 * 4-bit two's complement (q xor 8) so that shifting nibble j to the top and back sign-extends it to
 * q - 8 directly: two shifts and a convert per 16 weights. Lossless.
 */
final class PackedQ4_0 extends PackedMatrix {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Bytes per 32-column block of a panel: P scales, then 32 x P nibbles. */
    private static final int BLOCK_BYTES = 4 * P + 16 * P;

    PackedQ4_0(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, panelBytes(cols), STREAM_ROWS);
    }

    static long panelBytes(int cols) {
        return (long) cols / 32 * BLOCK_BYTES;
    }

    @Override
    public DType type() {
        return DType.Q4_0;
    }

    /** Nibble j of every lane, q - 8, as floats. */
    private static FloatVector quants(IntVector chunk, int j) {
        IntVector q = j == 7 ? chunk.lanewise(VectorOperators.ASHR, 28)
                : chunk.lanewise(VectorOperators.LSHL, 28 - 4 * j).lanewise(VectorOperators.ASHR, 28);
        return (FloatVector) q.convert(VectorOperators.I2F, 0);
    }

    /*
     * A group's four panels share each block: [scales of panels 0..3][chunk 0 of panels 0..3][chunk 1 ...],
     * so that the kernels, which read chunk c of the four panels together, read ascending addresses.
     */

    /** Start of block {@code block} of the group holding panel {@code panel}. */
    private long groupBlock(int panel, int block) {
        return offset(panel - panel % 4, block, BLOCK_BYTES);
    }

    private IntVector chunk(long groupBlock, int panelInGroup, int c) {
        return IntVector.fromMemorySegment(I, data, groupBlock + 4L * P * (4 + 4 * c + panelInGroup), LE);
    }

    private FloatVector scales(long groupBlock, int panelInGroup) {
        return FloatVector.fromMemorySegment(F, data, groupBlock + 4L * P * panelInGroup, LE);
    }

    @Override
    void matvec(int group, float[] x, int xOff, float[] out) {
        long gb = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES;
        var a0 = FloatVector.zero(F);
        var a1 = FloatVector.zero(F);
        var a2 = FloatVector.zero(F);
        var a3 = FloatVector.zero(F);
        for (int kb = 0; kb < cols; kb += 32, gb += step) {
            var t0 = FloatVector.zero(F);
            var t1 = FloatVector.zero(F);
            var t2 = FloatVector.zero(F);
            var t3 = FloatVector.zero(F);
            for (int c = 0; c < 4; c++) {
                var q0 = chunk(gb, 0, c);
                var q1 = chunk(gb, 1, c);
                var q2 = chunk(gb, 2, c);
                var q3 = chunk(gb, 3, c);
                for (int j = 0; j < 8; j++) {
                    var xv = FloatVector.broadcast(F, x[xOff + kb + 8 * c + j]);
                    t0 = quants(q0, j).fma(xv, t0);
                    t1 = quants(q1, j).fma(xv, t1);
                    t2 = quants(q2, j).fma(xv, t2);
                    t3 = quants(q3, j).fma(xv, t3);
                }
            }
            a0 = t0.fma(scales(gb, 0), a0);
            a1 = t1.fma(scales(gb, 1), a1);
            a2 = t2.fma(scales(gb, 2), a2);
            a3 = t3.fma(scales(gb, 3), a3);
        }
        a0.intoArray(out, 0);
        a1.intoArray(out, P);
        a2.intoArray(out, 2 * P);
        a3.intoArray(out, 3 * P);
    }

    @Override
    void matvec2(int group, float[] x, int x0, int x1, float[] out) {
        java.util.Arrays.fill(out, 0, 2 * GROUP, 0f);
        long gb = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES;
        for (int kb = 0; kb < cols; kb += 32, gb += step) {
            var t00 = FloatVector.zero(F); // t<row><panel>: block sums without the scale
            var t01 = FloatVector.zero(F);
            var t02 = FloatVector.zero(F);
            var t03 = FloatVector.zero(F);
            var t10 = FloatVector.zero(F);
            var t11 = FloatVector.zero(F);
            var t12 = FloatVector.zero(F);
            var t13 = FloatVector.zero(F);
            for (int c = 0; c < 4; c++) {
                var q0 = chunk(gb, 0, c);
                var q1 = chunk(gb, 1, c);
                var q2 = chunk(gb, 2, c);
                var q3 = chunk(gb, 3, c);
                for (int j = 0; j < 8; j++) {
                    int k = kb + 8 * c + j;
                    var v0 = FloatVector.broadcast(F, x[x0 + k]);
                    var v1 = FloatVector.broadcast(F, x[x1 + k]);
                    var w = quants(q0, j);
                    t00 = w.fma(v0, t00);
                    t10 = w.fma(v1, t10);
                    w = quants(q1, j);
                    t01 = w.fma(v0, t01);
                    t11 = w.fma(v1, t11);
                    w = quants(q2, j);
                    t02 = w.fma(v0, t02);
                    t12 = w.fma(v1, t12);
                    w = quants(q3, j);
                    t03 = w.fma(v0, t03);
                    t13 = w.fma(v1, t13);
                }
            }
            var s0 = scales(gb, 0);
            var s1 = scales(gb, 1);
            var s2 = scales(gb, 2);
            var s3 = scales(gb, 3);
            t00.fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
            t01.fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
            t02.fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
            t03.fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
            t10.fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
            t11.fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
            t12.fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
            t13.fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
        }
    }

    @Override
    void matvec4(int group, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        java.util.Arrays.fill(out, 0, 4 * GROUP, 0f);
        long gb = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES;
        for (int kb = 0; kb < cols; kb += 32, gb += step) {
            // two panels at a time: 4 rows x 4 panels of block sums would not leave registers for the rest
            for (int p = 0; p < 4; p += 2) {
                var t00 = FloatVector.zero(F); // t<row><panel p + 0|1>: block sums without the scale
                var t01 = FloatVector.zero(F);
                var t10 = FloatVector.zero(F);
                var t11 = FloatVector.zero(F);
                var t20 = FloatVector.zero(F);
                var t21 = FloatVector.zero(F);
                var t30 = FloatVector.zero(F);
                var t31 = FloatVector.zero(F);
                for (int c = 0; c < 4; c++) {
                    var q0 = chunk(gb, p, c);
                    var q1 = chunk(gb, p + 1, c);
                    for (int j = 0; j < 8; j++) {
                        int k = kb + 8 * c + j;
                        var v0 = FloatVector.broadcast(F, x[x0 + k]);
                        var v1 = FloatVector.broadcast(F, x[x1 + k]);
                        var v2 = FloatVector.broadcast(F, x[x2 + k]);
                        var v3 = FloatVector.broadcast(F, x[x3 + k]);
                        var w = quants(q0, j);
                        t00 = w.fma(v0, t00);
                        t10 = w.fma(v1, t10);
                        t20 = w.fma(v2, t20);
                        t30 = w.fma(v3, t30);
                        w = quants(q1, j);
                        t01 = w.fma(v0, t01);
                        t11 = w.fma(v1, t11);
                        t21 = w.fma(v2, t21);
                        t31 = w.fma(v3, t31);
                    }
                }
                var s0 = scales(gb, p);
                var s1 = scales(gb, p + 1);
                int o0 = p * P, o1 = o0 + P;
                t00.fma(s0, FloatVector.fromArray(F, out, o0)).intoArray(out, o0);
                t01.fma(s1, FloatVector.fromArray(F, out, o1)).intoArray(out, o1);
                t10.fma(s0, FloatVector.fromArray(F, out, GROUP + o0)).intoArray(out, GROUP + o0);
                t11.fma(s1, FloatVector.fromArray(F, out, GROUP + o1)).intoArray(out, GROUP + o1);
                t20.fma(s0, FloatVector.fromArray(F, out, 2 * GROUP + o0)).intoArray(out, 2 * GROUP + o0);
                t21.fma(s1, FloatVector.fromArray(F, out, 2 * GROUP + o1)).intoArray(out, 2 * GROUP + o1);
                t30.fma(s0, FloatVector.fromArray(F, out, 3 * GROUP + o0)).intoArray(out, 3 * GROUP + o0);
                t31.fma(s1, FloatVector.fromArray(F, out, 3 * GROUP + o1)).intoArray(out, 3 * GROUP + o1);
            }
        }
    }

    @Override
    void dequantize(int panel, int k0, int kc, float[] buf, int off, int stride) {
        long gb = groupBlock(panel, k0 / 32);
        int p = panel % 4;
        for (int kb = 0; kb < kc; kb += 32, gb += 4L * BLOCK_BYTES) {
            var s = scales(gb, p);
            for (int c = 0; c < 4; c++) {
                var q = chunk(gb, p, c);
                for (int j = 0; j < 8; j++) {
                    quants(q, j).mul(s).intoArray(buf, off + (kb + 8 * c + j) * stride);
                }
            }
        }
    }

    @Override
    float weight(int row, int col) {
        int panel = row / P, p = panel % 4, lane = row % P, i = col % 32;
        long gb = groupBlock(panel, col / 32);
        float scale = data.get(ValueLayout.JAVA_FLOAT_UNALIGNED, gb + 4L * P * p + 4L * lane);
        int packed = data.get(ValueLayout.JAVA_INT_UNALIGNED, gb + 4L * P * (4 + 4 * (i / 8) + p) + 4L * lane);
        return scale * ((packed << (28 - 4 * (i % 8))) >> 28);
    }

    @Override
    void packPanel(Matrix source, int panel) {
        var q4 = (Q4_0Matrix) source;
        for (int lane = 0; lane < P && panel * P + lane < rows; lane++) {
            int p = panel % 4;
            long from = (panel * P + lane) * q4.rowBytes, gb = groupBlock(panel, 0);
            for (int kb = 0; kb < cols; kb += 32, from += Q4_0Matrix.BLOCK_BYTES, gb += 4L * BLOCK_BYTES) {
                float scale = q4.scale(from);
                checkFinite(scale, panel * P + lane, kb);
                data.set(ValueLayout.JAVA_FLOAT_UNALIGNED, gb + 4L * P * p + 4L * lane, scale);
                for (int c = 0; c < 4; c++) {
                    int packed = 0;
                    for (int j = 0; j < 8; j++) {
                        int i = 8 * c + j;
                        int b = q4.data.get(ValueLayout.JAVA_BYTE, from + 2 + i % 16) & 0xFF;
                        int q = i < 16 ? b & 15 : b >> 4;
                        packed |= (q ^ 8) << (4 * j);
                    }
                    data.set(ValueLayout.JAVA_INT_UNALIGNED, gb + 4L * P * (4 + 4 * c + p) + 4L * lane, packed);
                }
            }
        }
    }
}
