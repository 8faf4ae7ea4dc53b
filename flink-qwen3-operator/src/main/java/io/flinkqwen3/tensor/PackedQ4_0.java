package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;
import static jdk.incubator.vector.VectorOperators.AND;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Q4_0 in panels: per 32-column block, the P rows' f16 scales, then 4 chunks of P ints; int lane l
 * of chunk c holds row l's quants of columns 8c .. 8c+7, one per nibble, stored as (q - 8) in 4-bit
 * two's complement (q xor 8) so that nibble j shifted to the top and the rest masked off is
 * (q - 8) * 2^28 as an int: a shift, an AND and a convert per 16 weights, the 2^-28 folded into the
 * block scale. 18 bytes per 32 weights, as in ggml. Lossless: ggml's scales and quants as they are.
 *
 * <p>The scales stay f16 because decode streams the weights from DRAM: f32 scales would read 20
 * bytes per 32 weights instead of 18 (11% more). They are often negative (ggml writes d = max / -8)
 * and the quants cannot take the sign (q - 8 spans -8 .. 7), so the decode keeps it.
 */
final class PackedQ4_0 extends PackedMatrix {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Bytes per 32-column block of a panel: P f16 scales, then 32 x P nibbles. */
    private static final int BLOCK_BYTES = 2 * P + 16 * P;

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

    /*
     * A group's four panels share each block: [scales of panels 0|1][scales of panels 2|3][chunk 0 of
     * panels 0..3][chunk 1 ...], so that the kernels, which read chunk c of the four panels together,
     * read ascending addresses. Int lane l of a scale pair holds row l's scale of the even panel in
     * its low half and of the odd panel in its high half.
     *
     * The kernels below write their Vector API calls out instead of calling helpers of this class:
     * past C2's parse-time node limit (NodeCountInliningCutoff) it refuses to inline ordinary
     * methods, and a helper left out of line boxes every vector it takes or returns, while the
     * Vector API's own methods are always inlined, late if need be.
     *
     * Decoding, per 16 lanes:
     * - nibble j of a chunk q:  (q << (28 - 4j)) & 0xF0000000, then int -> float: (q - 8) * 2^28,
     *   exact (an AND rather than an arithmetic shift back: vector shifts have fewer ports);
     * - f16 scales of a pair s:  even panel ((s << 16) >> 3) & 0x8FFFE000, odd panel (s >> 3) &
     *   0x8FFFE000 (arithmetic shifts): the f16's sign at fp32's (its copies cleared), its exponent
     *   and mantissa at fp32's positions, which reads the value times 2^-112 (the exponent biases are
     *   127 and 15; f16 subnormals become fp32 subnormals), and one multiply by 2^84 gives it times
     *   2^-28, exactly, undoing the quants' 2^28 (checked for every finite f16).
     */

    /** Start of block {@code block} of the group holding panel {@code panel}. */
    private long groupBlock(int panel, int block) {
        return offset(panel - panel % 4, block, BLOCK_BYTES);
    }

    private long scaleAt(long groupBlock, int panelInGroup, int lane) {
        return groupBlock + 4L * P * (panelInGroup / 2) + 4L * lane + 2 * (panelInGroup % 2);
    }

    private long chunkAt(long groupBlock, int panelInGroup, int lane, int c) {
        return groupBlock + 4L * P * (2 + 4 * c + panelInGroup) + 4L * lane;
    }

    @Override
    void matvec(int group, float[] x, int xOff, float[] out) {
        long gb = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES;
        var a0 = FloatVector.zero(F);
        var a1 = FloatVector.zero(F);
        var a2 = FloatVector.zero(F);
        var a3 = FloatVector.zero(F);
        for (int kb = 0; kb < cols; kb += 32, gb += step) {
            // block sums without the scale, scaled once per block
            var t0 = FloatVector.zero(F);
            var t1 = FloatVector.zero(F);
            var t2 = FloatVector.zero(F);
            var t3 = FloatVector.zero(F);
            for (int c = 0; c < 4; c++) {
                long at = gb + 4L * P * (2 + 4 * c);
                var q0 = IntVector.fromMemorySegment(I, data, at, LE);
                var q1 = IntVector.fromMemorySegment(I, data, at + 4 * P, LE);
                var q2 = IntVector.fromMemorySegment(I, data, at + 8 * P, LE);
                var q3 = IntVector.fromMemorySegment(I, data, at + 12 * P, LE);
                for (int j = 0; j < 8; j++) {
                    var xv = FloatVector.broadcast(F, x[xOff + kb + 8 * c + j]);
                    int left = 28 - 4 * j;
                    t0 = ((FloatVector) q0.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0)).fma(xv, t0);
                    t1 = ((FloatVector) q1.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0)).fma(xv, t1);
                    t2 = ((FloatVector) q2.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0)).fma(xv, t2);
                    t3 = ((FloatVector) q3.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0)).fma(xv, t3);
                }
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            a0 = t0.fma(s01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f), a0);
            a1 = t1.fma(s01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f), a1);
            a2 = t2.fma(s23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f), a2);
            a3 = t3.fma(s23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f), a3);
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
                long at = gb + 4L * P * (2 + 4 * c);
                var q0 = IntVector.fromMemorySegment(I, data, at, LE);
                var q1 = IntVector.fromMemorySegment(I, data, at + 4 * P, LE);
                var q2 = IntVector.fromMemorySegment(I, data, at + 8 * P, LE);
                var q3 = IntVector.fromMemorySegment(I, data, at + 12 * P, LE);
                for (int j = 0; j < 8; j++) {
                    int k = kb + 8 * c + j, left = 28 - 4 * j;
                    var v0 = FloatVector.broadcast(F, x[x0 + k]);
                    var v1 = FloatVector.broadcast(F, x[x1 + k]);
                    var w = (FloatVector) q0.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0);
                    t00 = w.fma(v0, t00);
                    t10 = w.fma(v1, t10);
                    w = (FloatVector) q1.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0);
                    t01 = w.fma(v0, t01);
                    t11 = w.fma(v1, t11);
                    w = (FloatVector) q2.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0);
                    t02 = w.fma(v0, t02);
                    t12 = w.fma(v1, t12);
                    w = (FloatVector) q3.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0);
                    t03 = w.fma(v0, t03);
                    t13 = w.fma(v1, t13);
                }
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var s0 = s01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f);
            var s1 = s01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f);
            var s2 = s23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f);
            var s3 = s23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f);
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
            var t00 = FloatVector.zero(F); // t<row><panel>: block sums without the scale
            var t01 = FloatVector.zero(F);
            var t02 = FloatVector.zero(F);
            var t03 = FloatVector.zero(F);
            var t10 = FloatVector.zero(F);
            var t11 = FloatVector.zero(F);
            var t12 = FloatVector.zero(F);
            var t13 = FloatVector.zero(F);
            var t20 = FloatVector.zero(F);
            var t21 = FloatVector.zero(F);
            var t22 = FloatVector.zero(F);
            var t23 = FloatVector.zero(F);
            var t30 = FloatVector.zero(F);
            var t31 = FloatVector.zero(F);
            var t32 = FloatVector.zero(F);
            var t33 = FloatVector.zero(F);
            for (int c = 0; c < 4; c++) {
                long at = gb + 4L * P * (2 + 4 * c);
                var q0 = IntVector.fromMemorySegment(I, data, at, LE);
                var q1 = IntVector.fromMemorySegment(I, data, at + 4 * P, LE);
                var q2 = IntVector.fromMemorySegment(I, data, at + 8 * P, LE);
                var q3 = IntVector.fromMemorySegment(I, data, at + 12 * P, LE);
                for (int j = 0; j < 8; j++) {
                    int k = kb + 8 * c + j, left = 28 - 4 * j;
                    var v0 = FloatVector.broadcast(F, x[x0 + k]);
                    var v1 = FloatVector.broadcast(F, x[x1 + k]);
                    var v2 = FloatVector.broadcast(F, x[x2 + k]);
                    var v3 = FloatVector.broadcast(F, x[x3 + k]);
                    var w = (FloatVector) q0.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0);
                    t00 = w.fma(v0, t00);
                    t10 = w.fma(v1, t10);
                    t20 = w.fma(v2, t20);
                    t30 = w.fma(v3, t30);
                    w = (FloatVector) q1.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0);
                    t01 = w.fma(v0, t01);
                    t11 = w.fma(v1, t11);
                    t21 = w.fma(v2, t21);
                    t31 = w.fma(v3, t31);
                    w = (FloatVector) q2.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0);
                    t02 = w.fma(v0, t02);
                    t12 = w.fma(v1, t12);
                    t22 = w.fma(v2, t22);
                    t32 = w.fma(v3, t32);
                    w = (FloatVector) q3.lanewise(LSHL, left).lanewise(AND, 0xF0000000).convert(I2F, 0);
                    t03 = w.fma(v0, t03);
                    t13 = w.fma(v1, t13);
                    t23 = w.fma(v2, t23);
                    t33 = w.fma(v3, t33);
                }
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var s0 = s01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f);
            var s1 = s01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f);
            var s2 = s23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f);
            var s3 = s23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f);
            t00.fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
            t01.fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
            t02.fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
            t03.fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
            t10.fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
            t11.fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
            t12.fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
            t13.fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
            t20.fma(s0, FloatVector.fromArray(F, out, 2 * GROUP)).intoArray(out, 2 * GROUP);
            t21.fma(s1, FloatVector.fromArray(F, out, 2 * GROUP + P)).intoArray(out, 2 * GROUP + P);
            t22.fma(s2, FloatVector.fromArray(F, out, 2 * GROUP + 2 * P)).intoArray(out, 2 * GROUP + 2 * P);
            t23.fma(s3, FloatVector.fromArray(F, out, 2 * GROUP + 3 * P)).intoArray(out, 2 * GROUP + 3 * P);
            t30.fma(s0, FloatVector.fromArray(F, out, 3 * GROUP)).intoArray(out, 3 * GROUP);
            t31.fma(s1, FloatVector.fromArray(F, out, 3 * GROUP + P)).intoArray(out, 3 * GROUP + P);
            t32.fma(s2, FloatVector.fromArray(F, out, 3 * GROUP + 2 * P)).intoArray(out, 3 * GROUP + 2 * P);
            t33.fma(s3, FloatVector.fromArray(F, out, 3 * GROUP + 3 * P)).intoArray(out, 3 * GROUP + 3 * P);
        }
    }

    @Override
    void dequantize(int panel, int k0, int kc, float[] buf, int off, int stride) {
        long gb = groupBlock(panel, k0 / 32);
        int p = panel % 4, left = 16 - 16 * (p % 2); // an even panel's scale is the low half
        for (int kb = 0; kb < kc; kb += 32, gb += 4L * BLOCK_BYTES) {
            var s = IntVector.fromMemorySegment(I, data, gb + 2L * P * (p & ~1), LE)
                    .lanewise(LSHL, left).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p84f);
            for (int c = 0; c < 4; c++) {
                var q = IntVector.fromMemorySegment(I, data, gb + 4L * P * (2 + 4 * c + p), LE);
                for (int j = 0; j < 8; j++) {
                    ((FloatVector) q.lanewise(LSHL, 28 - 4 * j).lanewise(AND, 0xF0000000).convert(I2F, 0)).mul(s)
                            .intoArray(buf, off + (kb + 8 * c + j) * stride);
                }
            }
        }
    }

    @Override
    float weight(int row, int col) {
        int panel = row / P, p = panel % 4, lane = row % P, i = col % 32;
        long gb = groupBlock(panel, col / 32);
        float scale = Float.float16ToFloat(data.get(ValueLayout.JAVA_SHORT_UNALIGNED, scaleAt(gb, p, lane)));
        int packed = data.get(ValueLayout.JAVA_INT_UNALIGNED, chunkAt(gb, p, lane, i / 8));
        return scale * ((packed << (28 - 4 * (i % 8))) >> 28);
    }

    @Override
    void packPanel(Matrix source, int panel) {
        var q4 = (Q4_0Matrix) source;
        int p = panel % 4;
        for (int lane = 0; lane < P && panel * P + lane < rows; lane++) {
            long from = (panel * P + lane) * q4.rowBytes, gb = groupBlock(panel, 0);
            for (int kb = 0; kb < cols; kb += 32, from += Q4_0Matrix.BLOCK_BYTES, gb += 4L * BLOCK_BYTES) {
                short scale = q4.data.get(ValueLayout.JAVA_SHORT_UNALIGNED, from);
                checkFinite(Float.float16ToFloat(scale), panel * P + lane, kb);
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED, scaleAt(gb, p, lane), scale);
                for (int c = 0; c < 4; c++) {
                    int packed = 0;
                    for (int j = 0; j < 8; j++) {
                        int i = 8 * c + j;
                        int b = q4.data.get(ValueLayout.JAVA_BYTE, from + 2 + i % 16) & 0xFF;
                        int q = i < 16 ? b & 15 : b >> 4;
                        packed |= (q ^ 8) << (4 * j);
                    }
                    data.set(ValueLayout.JAVA_INT_UNALIGNED, chunkAt(gb, p, lane, c), packed);
                }
            }
        }
    }
}
