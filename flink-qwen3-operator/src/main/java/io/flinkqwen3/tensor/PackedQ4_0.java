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
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Q4_0 in panels: per 32-column block, the P rows' f16 scales, then 4 chunks of P ints; int lane l
 * of chunk c holds row l's quants q (0..15, the weight being scale * (q - 8)) of columns 8c .. 8c+7,
 * one per nibble: nibbles 0..6 as q, nibble 7 as (q - 8) in 4-bit two's complement (q xor 8). The
 * streaming kernels decode nibble j with one AND and a convert, no shift: q * 2^4j as an int (j < 7)
 * or (q - 8) * 2^28 (j = 7, the sign bit), and multiply it by the input prescaled by 2^-4j
 * ({@link #streamInput}); the 8 * (sum of the block's inputs in columns j < 7) that the unsigned
 * nibbles add to a block's sum is subtracted once per block and row before the block's scale (as
 * llama.cpp's VNNI kernels correct their unsigned operand). 18 bytes per 32 weights, as in ggml.
 * Lossless storage: ggml's scales and quants as they are. A block's sum adds q * x (up to 15 |x|)
 * before the correction comes off, so its rounding error is a few times that of summing (q - 8) * x
 * (KernelsTest holds it to the scalar reference). Measured on AMD EPYC Zen 4, 4096x2048, MatBench,
 * builds alternating, against the shift-and-mask decode before it: one row, one thread 368-388 ->
 * 306-323 us, two threads (from DRAM) 191-194 -> 169-171 us; 16 rows, two threads 1568-1577 ->
 * 1401-1461 us.
 *
 * <p>The scales stay f16 because decode streams the weights from DRAM: f32 scales would read 20
 * bytes per 32 weights instead of 18 (11% more). They are often negative (ggml writes d = max / -8),
 * so their decode keeps the sign.
 */
final class PackedQ4_0 extends PackedMatrix {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Bytes per 32-column block of a panel: P f16 scales, then 32 x P nibbles. */
    private static final int BLOCK_BYTES = 2 * P + 16 * P;

    PackedQ4_0(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, panelBytes(cols), STREAM_ROWS);
    }

    /** 2^-4j for column j of each 8: the prescaling of the inputs, repeated over a vector. */
    private static final float[] PRESCALE = new float[Math.max(8, F.length())];

    static {
        for (int i = 0; i < PRESCALE.length; i++) {
            PRESCALE[i] = Math.scalb(1f, -4 * (i % 8));
        }
    }

    static long panelBytes(int cols) {
        return (long) cols / 32 * BLOCK_BYTES;
    }

    @Override
    public DType type() {
        return DType.Q4_0;
    }

    /**
     * Each row as the kernels read it ({@link #streamStride} floats): x[k] * 2^-4(k % 8) for every
     * column k, then per 32-column block 8 * (sum of x[k] over its columns with k % 8 < 7), summed in
     * column order so that a row gets the same correction in every call.
     */
    @Override
    float[] streamInput(float[] x, int batch) {
        int stride = streamStride();
        float[] prepared = new float[batch * stride];
        for (int b = 0; b < batch; b++) {
            int from = b * cols, to = b * stride;
            prescale(x, from, prepared, to, cols);
            for (int kb = 0; kb < cols; kb += 32) {
                float sum = 0;
                for (int k = kb; k < kb + 32; k++) {
                    sum += k % 8 == 7 ? 0 : x[from + k];
                }
                prepared[to + cols + kb / 32] = 8 * sum;
            }
        }
        return prepared;
    }

    /** out[to + k] = x[from + k] * 2^-4(k % 8) for k in [0, cols): the nibble kernels' prescaled input. */
    static void prescale(float[] x, int from, float[] out, int to, int cols) {
        int k = 0;
        for (; k < F.loopBound(cols); k += F.length()) { // lanes are a power of two: k % 8 is where the pattern starts
            FloatVector.fromArray(F, x, from + k).mul(FloatVector.fromArray(F, PRESCALE, k % 8)).intoArray(out, to + k);
        }
        for (; k < cols; k++) {
            out[to + k] = x[from + k] * PRESCALE[k % 8];
        }
    }

    @Override
    int streamStride() {
        return cols + cols / 32;
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
     * - nibble j of a chunk v:  v & (0xF << 4j), then int -> float: q * 2^4j (j < 7) or (q - 8) * 2^28
     *   (j = 7), exact; times the input of its column prescaled by 2^-4j (exact unless it underflows,
     *   below 2^-98 for j = 7), so
     *   a block's sum is sum((q - 8) * x) + 8 * sum(x over columns j < 7), and the second term,
     *   kept per row and block at the end of each row of {@link #streamInput}, is subtracted;
     * - f16 scales of a pair s:  even panel ((s << 16) >> 3) & 0x8FFFE000, odd panel (s >> 3) &
     *   0x8FFFE000 (arithmetic shifts): the f16's sign at fp32's (its copies cleared), its exponent
     *   and mantissa at fp32's positions, which reads the value times 2^-112 (the exponent biases are
     *   127 and 15; f16 subnormals become fp32 subnormals), and one multiply by 2^112 gives the
     *   value, exactly (checked for every finite f16).
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
                    t0 = ((FloatVector) q0.lanewise(AND, 0xF << 4 * j).convert(I2F, 0)).fma(xv, t0);
                    t1 = ((FloatVector) q1.lanewise(AND, 0xF << 4 * j).convert(I2F, 0)).fma(xv, t1);
                    t2 = ((FloatVector) q2.lanewise(AND, 0xF << 4 * j).convert(I2F, 0)).fma(xv, t2);
                    t3 = ((FloatVector) q3.lanewise(AND, 0xF << 4 * j).convert(I2F, 0)).fma(xv, t3);
                }
            }
            var offset = FloatVector.broadcast(F, -x[xOff + cols + kb / 32]); // the unsigned nibbles' excess
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            a0 = t0.add(offset).fma(s01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f), a0);
            a1 = t1.add(offset).fma(s01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f), a1);
            a2 = t2.add(offset).fma(s23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f), a2);
            a3 = t3.add(offset).fma(s23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f), a3);
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
                    int k = kb + 8 * c + j;
                    var v0 = FloatVector.broadcast(F, x[x0 + k]);
                    var v1 = FloatVector.broadcast(F, x[x1 + k]);
                    var w = (FloatVector) q0.lanewise(AND, 0xF << 4 * j).convert(I2F, 0);
                    t00 = w.fma(v0, t00);
                    t10 = w.fma(v1, t10);
                    w = (FloatVector) q1.lanewise(AND, 0xF << 4 * j).convert(I2F, 0);
                    t01 = w.fma(v0, t01);
                    t11 = w.fma(v1, t11);
                    w = (FloatVector) q2.lanewise(AND, 0xF << 4 * j).convert(I2F, 0);
                    t02 = w.fma(v0, t02);
                    t12 = w.fma(v1, t12);
                    w = (FloatVector) q3.lanewise(AND, 0xF << 4 * j).convert(I2F, 0);
                    t03 = w.fma(v0, t03);
                    t13 = w.fma(v1, t13);
                }
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var o0 = FloatVector.broadcast(F, -x[x0 + cols + kb / 32]);
            var o1 = FloatVector.broadcast(F, -x[x1 + cols + kb / 32]);
            var s0 = s01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s1 = s01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s2 = s23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s3 = s23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            t00.add(o0).fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
            t01.add(o0).fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
            t02.add(o0).fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
            t03.add(o0).fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
            t10.add(o1).fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
            t11.add(o1).fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
            t12.add(o1).fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
            t13.add(o1).fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
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
                    int k = kb + 8 * c + j;
                    var v0 = FloatVector.broadcast(F, x[x0 + k]);
                    var v1 = FloatVector.broadcast(F, x[x1 + k]);
                    var v2 = FloatVector.broadcast(F, x[x2 + k]);
                    var v3 = FloatVector.broadcast(F, x[x3 + k]);
                    var w = (FloatVector) q0.lanewise(AND, 0xF << 4 * j).convert(I2F, 0);
                    t00 = w.fma(v0, t00);
                    t10 = w.fma(v1, t10);
                    t20 = w.fma(v2, t20);
                    t30 = w.fma(v3, t30);
                    w = (FloatVector) q1.lanewise(AND, 0xF << 4 * j).convert(I2F, 0);
                    t01 = w.fma(v0, t01);
                    t11 = w.fma(v1, t11);
                    t21 = w.fma(v2, t21);
                    t31 = w.fma(v3, t31);
                    w = (FloatVector) q2.lanewise(AND, 0xF << 4 * j).convert(I2F, 0);
                    t02 = w.fma(v0, t02);
                    t12 = w.fma(v1, t12);
                    t22 = w.fma(v2, t22);
                    t32 = w.fma(v3, t32);
                    w = (FloatVector) q3.lanewise(AND, 0xF << 4 * j).convert(I2F, 0);
                    t03 = w.fma(v0, t03);
                    t13 = w.fma(v1, t13);
                    t23 = w.fma(v2, t23);
                    t33 = w.fma(v3, t33);
                }
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var o0 = FloatVector.broadcast(F, -x[x0 + cols + kb / 32]);
            var o1 = FloatVector.broadcast(F, -x[x1 + cols + kb / 32]);
            var o2 = FloatVector.broadcast(F, -x[x2 + cols + kb / 32]);
            var o3 = FloatVector.broadcast(F, -x[x3 + cols + kb / 32]);
            var s0 = s01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s1 = s01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s2 = s23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s3 = s23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            t00.add(o0).fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
            t01.add(o0).fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
            t02.add(o0).fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
            t03.add(o0).fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
            t10.add(o1).fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
            t11.add(o1).fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
            t12.add(o1).fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
            t13.add(o1).fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
            t20.add(o2).fma(s0, FloatVector.fromArray(F, out, 2 * GROUP)).intoArray(out, 2 * GROUP);
            t21.add(o2).fma(s1, FloatVector.fromArray(F, out, 2 * GROUP + P)).intoArray(out, 2 * GROUP + P);
            t22.add(o2).fma(s2, FloatVector.fromArray(F, out, 2 * GROUP + 2 * P)).intoArray(out, 2 * GROUP + 2 * P);
            t23.add(o2).fma(s3, FloatVector.fromArray(F, out, 2 * GROUP + 3 * P)).intoArray(out, 2 * GROUP + 3 * P);
            t30.add(o3).fma(s0, FloatVector.fromArray(F, out, 3 * GROUP)).intoArray(out, 3 * GROUP);
            t31.add(o3).fma(s1, FloatVector.fromArray(F, out, 3 * GROUP + P)).intoArray(out, 3 * GROUP + P);
            t32.add(o3).fma(s2, FloatVector.fromArray(F, out, 3 * GROUP + 2 * P)).intoArray(out, 3 * GROUP + 2 * P);
            t33.add(o3).fma(s3, FloatVector.fromArray(F, out, 3 * GROUP + 3 * P)).intoArray(out, 3 * GROUP + 3 * P);
        }
    }

    @Override
    void dequantize(int panel, int k0, int kc, float[] buf, int off, int stride) {
        long gb = groupBlock(panel, k0 / 32);
        int p = panel % 4, left = 16 - 16 * (p % 2); // an even panel's scale is the low half
        var zero = FloatVector.zero(F);
        for (int kb = 0; kb < kc; kb += 32, gb += 4L * BLOCK_BYTES) {
            var s = IntVector.fromMemorySegment(I, data, gb + 2L * P * (p & ~1), LE)
                    .lanewise(LSHL, left).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var minus8s = s.mul(-8f);
            for (int c = 0; c < 4; c++) {
                var q = IntVector.fromMemorySegment(I, data, gb + 4L * P * (2 + 4 * c + p), LE);
                for (int j = 0; j < 8; j++) { // q * 2^4j * (scale * 2^-4j) - 8 * scale, or for j = 7 (q - 8) * 2^28 * (scale * 2^-28)
                    ((FloatVector) q.lanewise(AND, 0xF << 4 * j).convert(I2F, 0)).fma(s.mul(Math.scalb(1f, -4 * j)), j == 7 ? zero : minus8s)
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
        int j = i % 8;
        return scale * (j == 7 ? packed >> 28 : (packed >>> 4 * j & 15) - 8);
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
                        packed |= (j == 7 ? q ^ 8 : q) << (4 * j); // nibble 7 signed: see the class comment
                    }
                    data.set(ValueLayout.JAVA_INT_UNALIGNED, chunkAt(gb, p, lane, c), packed);
                }
            }
        }
    }
}
