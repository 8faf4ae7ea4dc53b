package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;
import static jdk.incubator.vector.VectorOperators.AND;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Q4_0 in panels, multiplied in 16-bit integers against int8 inputs, as llama.cpp multiplies Q4_0
 * by Q8_0 activations (ggml-cpu's ggml_vec_dot_q4_0_q8_0).
 *
 * <p>Layout: per 32-column block, the P rows' f16 scales, then 4 chunks of P ints; int lane l of
 * chunk c holds row l's quants q (0..15, the weight being scale * (q - 8)), one per nibble j at bits
 * 4j: columns 4c .. 4c+3 in nibbles 0..3 and 16+4c .. 16+4c+3 in nibbles 4..7 (the low and high
 * nibbles of ggml's bytes 4c .. 4c+3). 18 bytes per 32 weights, as in ggml; lossless.
 *
 * <p>Streaming kernels ({@link #matvec}, {@link #matvec2}, {@link #matvec4}): {@link #streamInput}
 * quantizes each input row per 32-column block as ggml's Q8_0 does (d = max |x| / 127, x_q =
 * round(x / d)). Read as 16-bit lanes, a chunk holds columns 4c .. 4c+3 of row l in lane 2l and
 * 16+4c .. 16+4c+3 in lane 2l+1, so one broadcast int carries the two inputs a nibble position needs.
 * Nibble j of a lane is one AND (j = 0), a shift and an AND (j = 1, 2) or a shift (j = 3); a 16-bit
 * multiply and add accumulate it against the input. Each lane starts at -8 * (the sum of its 16
 * columns' x_q), so it sums (q - 8) * x_q, exactly: every partial sum stays within 16 * 8 * 127 =
 * 16256, and a row's two lanes add within 2^15, in three integer operations (the int's top half of
 * (i << 16) + i). The block's integer dot product is converted once and multiplied by d and the
 * block's scale. 16-bit multiply and add run on more ports than the fp32 FMA (register-only, one
 * core: 98 G multiply-adds/s against 58.6) and a nibble needs no int -> float convert. Measured on
 * AMD EPYC Zen 4, MatBench Q4_0 4096x2048 from DRAM, two threads, builds alternating, against the
 * fp32 kernels before (nibble AND + convert + FMA against prescaled fp32 inputs): 1 row 48-49 ->
 * 60-67 G weight-rows/s (27 -> 34-38 GB/s), 2 rows 70 -> 87-90, 4 rows 89 -> 97-101, 16 rows 92-97
 * -> 97-101; one row, one thread, in cache 27 -> 42.
 *
 * <p>The quantized inputs differ from x by up to half a step (d / 2) per element, the error
 * llama.cpp's Q4_0 products have; batches above {@link #STREAM_ROWS} (prefill, or a step that mixes
 * decode tokens with a prompt chunk) run the fp32 tiles on x as it is, so a row's result depends on
 * its batch's size at that level (up to 32 rows it does not, bit for bit). Inputs beyond ~1e36
 * overflow d * (integer sum) where fp32 sums would not.
 *
 * <p>The scales stay f16 because decode streams the weights from DRAM: f32 scales would read 20
 * bytes per 32 weights instead of 18 (11% more). They are often negative (ggml writes d = max / -8),
 * so their decode keeps the sign.
 */
final class PackedQ4_0 extends PackedMatrix {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final short NIBBLE = 0xF;
    /** Bytes per 32-column block of a panel: P f16 scales, then 32 x P nibbles. */
    private static final int BLOCK_BYTES = 2 * P + 16 * P;
    /** Floats per 32-column block of a {@link #streamInput} row: 16 input pairs, d, the lanes' start values. */
    private static final int INPUT_BLOCK = 18;

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

    /**
     * Each row as the kernels read it ({@link #streamStride} floats), per 32-column block of x:
     * <ul>
     *   <li>16 floats whose bits are each two 16-bit inputs: float w holds x_q of column w in its low
     *       half and of column 16 + w in its high half;</li>
     *   <li>d = max |x| / 127 (NaN or infinite if x is, which the outputs then are);</li>
     *   <li>a float whose bits are the two lanes' start values: -8 * (sum of x_q over columns 0..15)
     *       low, -8 * (sum over columns 16..31) high.</li>
     * </ul>
     * The bits of the first and last travel as floats: loads, stores and broadcasts only, which move
     * every pattern unchanged (signaling NaNs included) on the CPUs the Vector API compiles for;
     * KernelsTest's random inputs cover such patterns.
     */
    @Override
    float[] streamInput(float[] x, int batch) {
        float[] prepared = new float[batch * streamStride()];
        int[] q = new int[32];
        for (int from = 0, to = 0; from < batch * cols; from += 32, to += INPUT_BLOCK) {
            quantizeBlock(x, from, prepared, to, q);
        }
        return prepared;
    }

    /**
     * Writes the 18 floats above for x[from .. from + 32) at prepared[to ..] (q: scratch for 32 ints)
     * and returns the sum of the block's x_q. PackedQ4_K prepares its sub-blocks so too.
     */
    static int quantizeBlock(float[] x, int from, float[] prepared, int to, int[] q) {
        int lanes = F.length();
        var max = FloatVector.zero(F);
        for (int k = 0; k < 32; k += lanes) {
            max = max.max(FloatVector.fromArray(F, x, from + k).abs()); // NaN stays NaN
        }
        // a block below 2^-100 counts as zeros: 1 / d would overflow for d below 2^-128 (and its
        // products are far below anything the fp32 sums keep); NaN and infinities pass on in d
        float m = max.reduceLanes(VectorOperators.MAX), d = m < 0x1p-100f ? 0 : m / 127;
        float inverse = d == 0 ? 0 : 1 / d;
        for (int k = 0; k < 32; k += lanes) { // round to nearest (even), |x_q| <= 127: 1.5 * 2^23 leaves no fraction bits
            FloatVector.fromArray(F, x, from + k).mul(inverse).add(0x1.8p23f).sub(0x1.8p23f).convert(VectorOperators.F2I, 0)
                    .reinterpretAsInts().intoArray(q, k);
        }
        int low = 0, high = 0;
        for (int k = 0; k < 16; k += lanes) { // word w: x_q of column w low, of column 16 + w high
            var lo = IntVector.fromArray(I, q, k);
            var hi = IntVector.fromArray(I, q, 16 + k);
            lo.lanewise(AND, 0xFFFF).or(hi.lanewise(LSHL, 16)).reinterpretAsFloats().intoArray(prepared, to + k);
            low += lo.reduceLanes(VectorOperators.ADD);
            high += hi.reduceLanes(VectorOperators.ADD);
        }
        prepared[to + 16] = d;
        prepared[to + 17] = Float.intBitsToFloat(-8 * low & 0xFFFF | -8 * high << 16);
        return low + high;
    }

    @Override
    int streamStride() {
        return cols / 32 * INPUT_BLOCK;
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
     * The f16 scales of a pair s: even panel ((s << 16) >> 3) & 0x8FFFE000, odd panel (s >> 3) &
     * 0x8FFFE000 (arithmetic shifts): the f16's sign at fp32's (its copies cleared), its exponent
     * and mantissa at fp32's positions, which reads the value times 2^-112 (the exponent biases are
     * 127 and 15; f16 subnormals become fp32 subnormals), and one multiply by 2^112 gives the
     * value, exactly (checked for every finite f16).
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
        for (int kb = 0, xb = 0; kb < cols; kb += 32, gb += step, xb += INPUT_BLOCK) {
            var z = FloatVector.broadcast(F, x[xOff + xb + 17]).reinterpretAsShorts(); // -8 * (x_q sums), the start of each sum
            var t0 = z;
            var t1 = z;
            var t2 = z;
            var t3 = z;
            for (int c = 0; c < 4; c++) {
                long at = gb + 4L * P * (2 + 4 * c);
                var q0 = ShortVector.fromMemorySegment(S, data, at, LE);
                var q1 = ShortVector.fromMemorySegment(S, data, at + 4 * P, LE);
                var q2 = ShortVector.fromMemorySegment(S, data, at + 8 * P, LE);
                var q3 = ShortVector.fromMemorySegment(S, data, at + 12 * P, LE);
                for (int j = 0; j < 4; j++) {
                    ShortVector w0, w1, w2, w3;
                    if (j == 0) {
                        w0 = q0.lanewise(AND, NIBBLE);
                        w1 = q1.lanewise(AND, NIBBLE);
                        w2 = q2.lanewise(AND, NIBBLE);
                        w3 = q3.lanewise(AND, NIBBLE);
                    } else if (j < 3) {
                        w0 = q0.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                        w1 = q1.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                        w2 = q2.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                        w3 = q3.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                    } else {
                        w0 = q0.lanewise(LSHR, 12);
                        w1 = q1.lanewise(LSHR, 12);
                        w2 = q2.lanewise(LSHR, 12);
                        w3 = q3.lanewise(LSHR, 12);
                    }
                    var xv = FloatVector.broadcast(F, x[xOff + xb + 4 * c + j]).reinterpretAsShorts();
                    t0 = t0.add(w0.mul(xv));
                    t1 = t1.add(w1.mul(xv));
                    t2 = t2.add(w2.mul(xv));
                    t3 = t3.add(w3.mul(xv));
                }
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var s0 = s01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s1 = s01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s2 = s23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s3 = s23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var d = FloatVector.broadcast(F, x[xOff + xb + 16]);
            var i0 = t0.reinterpretAsInts(); // row sum: (lo << 16) + lo + (hi << 16), its top half
            a0 = ((FloatVector) i0.lanewise(LSHL, 16).add(i0).lanewise(ASHR, 16).convert(I2F, 0)).mul(d).fma(s0, a0);
            var i1 = t1.reinterpretAsInts();
            a1 = ((FloatVector) i1.lanewise(LSHL, 16).add(i1).lanewise(ASHR, 16).convert(I2F, 0)).mul(d).fma(s1, a1);
            var i2 = t2.reinterpretAsInts();
            a2 = ((FloatVector) i2.lanewise(LSHL, 16).add(i2).lanewise(ASHR, 16).convert(I2F, 0)).mul(d).fma(s2, a2);
            var i3 = t3.reinterpretAsInts();
            a3 = ((FloatVector) i3.lanewise(LSHL, 16).add(i3).lanewise(ASHR, 16).convert(I2F, 0)).mul(d).fma(s3, a3);
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
        for (int kb = 0, xb = 0; kb < cols; kb += 32, gb += step, xb += INPUT_BLOCK) {
            var z0 = FloatVector.broadcast(F, x[x0 + xb + 17]).reinterpretAsShorts();
            var z1 = FloatVector.broadcast(F, x[x1 + xb + 17]).reinterpretAsShorts();
            var t00 = z0;
            var t01 = z0;
            var t02 = z0;
            var t03 = z0;
            var t10 = z1;
            var t11 = z1;
            var t12 = z1;
            var t13 = z1;
            for (int c = 0; c < 4; c++) {
                long at = gb + 4L * P * (2 + 4 * c);
                var q0 = ShortVector.fromMemorySegment(S, data, at, LE);
                var q1 = ShortVector.fromMemorySegment(S, data, at + 4 * P, LE);
                var q2 = ShortVector.fromMemorySegment(S, data, at + 8 * P, LE);
                var q3 = ShortVector.fromMemorySegment(S, data, at + 12 * P, LE);
                for (int j = 0; j < 4; j++) {
                    ShortVector w0, w1, w2, w3;
                    if (j == 0) {
                        w0 = q0.lanewise(AND, NIBBLE);
                        w1 = q1.lanewise(AND, NIBBLE);
                        w2 = q2.lanewise(AND, NIBBLE);
                        w3 = q3.lanewise(AND, NIBBLE);
                    } else if (j < 3) {
                        w0 = q0.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                        w1 = q1.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                        w2 = q2.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                        w3 = q3.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                    } else {
                        w0 = q0.lanewise(LSHR, 12);
                        w1 = q1.lanewise(LSHR, 12);
                        w2 = q2.lanewise(LSHR, 12);
                        w3 = q3.lanewise(LSHR, 12);
                    }
                    var v0 = FloatVector.broadcast(F, x[x0 + xb + 4 * c + j]).reinterpretAsShorts();
                    var v1 = FloatVector.broadcast(F, x[x1 + xb + 4 * c + j]).reinterpretAsShorts();
                    t00 = t00.add(w0.mul(v0));
                    t10 = t10.add(w0.mul(v1));
                    t01 = t01.add(w1.mul(v0));
                    t11 = t11.add(w1.mul(v1));
                    t02 = t02.add(w2.mul(v0));
                    t12 = t12.add(w2.mul(v1));
                    t03 = t03.add(w3.mul(v0));
                    t13 = t13.add(w3.mul(v1));
                }
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var s0 = s01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s1 = s01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s2 = s23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s3 = s23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var d0 = FloatVector.broadcast(F, x[x0 + xb + 16]);
            var i00 = t00.reinterpretAsInts();
            ((FloatVector) i00.lanewise(LSHL, 16).add(i00).lanewise(ASHR, 16).convert(I2F, 0)).mul(d0)
                    .fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
            var i01 = t01.reinterpretAsInts();
            ((FloatVector) i01.lanewise(LSHL, 16).add(i01).lanewise(ASHR, 16).convert(I2F, 0)).mul(d0)
                    .fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
            var i02 = t02.reinterpretAsInts();
            ((FloatVector) i02.lanewise(LSHL, 16).add(i02).lanewise(ASHR, 16).convert(I2F, 0)).mul(d0)
                    .fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
            var i03 = t03.reinterpretAsInts();
            ((FloatVector) i03.lanewise(LSHL, 16).add(i03).lanewise(ASHR, 16).convert(I2F, 0)).mul(d0)
                    .fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
            var d1 = FloatVector.broadcast(F, x[x1 + xb + 16]);
            var i10 = t10.reinterpretAsInts();
            ((FloatVector) i10.lanewise(LSHL, 16).add(i10).lanewise(ASHR, 16).convert(I2F, 0)).mul(d1)
                    .fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
            var i11 = t11.reinterpretAsInts();
            ((FloatVector) i11.lanewise(LSHL, 16).add(i11).lanewise(ASHR, 16).convert(I2F, 0)).mul(d1)
                    .fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
            var i12 = t12.reinterpretAsInts();
            ((FloatVector) i12.lanewise(LSHL, 16).add(i12).lanewise(ASHR, 16).convert(I2F, 0)).mul(d1)
                    .fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
            var i13 = t13.reinterpretAsInts();
            ((FloatVector) i13.lanewise(LSHL, 16).add(i13).lanewise(ASHR, 16).convert(I2F, 0)).mul(d1)
                    .fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
        }
    }

    /**
     * Every nibble as a shift and an AND here (matvec's j = 0 and j = 3 cases save one of them):
     * with 16 accumulators the three-case form was too large for C1 ("out of virtual registers in
     * linear scan"), and a method C1 gives up on can stay in tier-2 code, the Vector API's Java
     * fallback, for the whole run (seen in {@code qwen3 bench}: KernelCheck's case). Keep this
     * method's size in mind when changing it.
     */
    @Override
    void matvec4(int group, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        java.util.Arrays.fill(out, 0, 4 * GROUP, 0f);
        long gb = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES;
        for (int kb = 0, xb = 0; kb < cols; kb += 32, gb += step, xb += INPUT_BLOCK) {
            var z0 = FloatVector.broadcast(F, x[x0 + xb + 17]).reinterpretAsShorts();
            var z1 = FloatVector.broadcast(F, x[x1 + xb + 17]).reinterpretAsShorts();
            var z2 = FloatVector.broadcast(F, x[x2 + xb + 17]).reinterpretAsShorts();
            var z3 = FloatVector.broadcast(F, x[x3 + xb + 17]).reinterpretAsShorts();
            var t00 = z0;
            var t01 = z0;
            var t02 = z0;
            var t03 = z0;
            var t10 = z1;
            var t11 = z1;
            var t12 = z1;
            var t13 = z1;
            var t20 = z2;
            var t21 = z2;
            var t22 = z2;
            var t23 = z2;
            var t30 = z3;
            var t31 = z3;
            var t32 = z3;
            var t33 = z3;
            for (int c = 0; c < 4; c++) {
                long at = gb + 4L * P * (2 + 4 * c);
                var q0 = ShortVector.fromMemorySegment(S, data, at, LE);
                var q1 = ShortVector.fromMemorySegment(S, data, at + 4 * P, LE);
                var q2 = ShortVector.fromMemorySegment(S, data, at + 8 * P, LE);
                var q3 = ShortVector.fromMemorySegment(S, data, at + 12 * P, LE);
                for (int j = 0; j < 4; j++) {
                    var w0 = q0.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                    var w1 = q1.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                    var w2 = q2.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                    var w3 = q3.lanewise(LSHR, 4 * j).lanewise(AND, NIBBLE);
                    var v0 = FloatVector.broadcast(F, x[x0 + xb + 4 * c + j]).reinterpretAsShorts();
                    var v1 = FloatVector.broadcast(F, x[x1 + xb + 4 * c + j]).reinterpretAsShorts();
                    var v2 = FloatVector.broadcast(F, x[x2 + xb + 4 * c + j]).reinterpretAsShorts();
                    var v3 = FloatVector.broadcast(F, x[x3 + xb + 4 * c + j]).reinterpretAsShorts();
                    t00 = t00.add(w0.mul(v0));
                    t10 = t10.add(w0.mul(v1));
                    t20 = t20.add(w0.mul(v2));
                    t30 = t30.add(w0.mul(v3));
                    t01 = t01.add(w1.mul(v0));
                    t11 = t11.add(w1.mul(v1));
                    t21 = t21.add(w1.mul(v2));
                    t31 = t31.add(w1.mul(v3));
                    t02 = t02.add(w2.mul(v0));
                    t12 = t12.add(w2.mul(v1));
                    t22 = t22.add(w2.mul(v2));
                    t32 = t32.add(w2.mul(v3));
                    t03 = t03.add(w3.mul(v0));
                    t13 = t13.add(w3.mul(v1));
                    t23 = t23.add(w3.mul(v2));
                    t33 = t33.add(w3.mul(v3));
                }
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var s0 = s01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s1 = s01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s2 = s23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var s3 = s23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var d0 = FloatVector.broadcast(F, x[x0 + xb + 16]);
            var i00 = t00.reinterpretAsInts();
            ((FloatVector) i00.lanewise(LSHL, 16).add(i00).lanewise(ASHR, 16).convert(I2F, 0)).mul(d0)
                    .fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
            var i01 = t01.reinterpretAsInts();
            ((FloatVector) i01.lanewise(LSHL, 16).add(i01).lanewise(ASHR, 16).convert(I2F, 0)).mul(d0)
                    .fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
            var i02 = t02.reinterpretAsInts();
            ((FloatVector) i02.lanewise(LSHL, 16).add(i02).lanewise(ASHR, 16).convert(I2F, 0)).mul(d0)
                    .fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
            var i03 = t03.reinterpretAsInts();
            ((FloatVector) i03.lanewise(LSHL, 16).add(i03).lanewise(ASHR, 16).convert(I2F, 0)).mul(d0)
                    .fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
            var d1 = FloatVector.broadcast(F, x[x1 + xb + 16]);
            var i10 = t10.reinterpretAsInts();
            ((FloatVector) i10.lanewise(LSHL, 16).add(i10).lanewise(ASHR, 16).convert(I2F, 0)).mul(d1)
                    .fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
            var i11 = t11.reinterpretAsInts();
            ((FloatVector) i11.lanewise(LSHL, 16).add(i11).lanewise(ASHR, 16).convert(I2F, 0)).mul(d1)
                    .fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
            var i12 = t12.reinterpretAsInts();
            ((FloatVector) i12.lanewise(LSHL, 16).add(i12).lanewise(ASHR, 16).convert(I2F, 0)).mul(d1)
                    .fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
            var i13 = t13.reinterpretAsInts();
            ((FloatVector) i13.lanewise(LSHL, 16).add(i13).lanewise(ASHR, 16).convert(I2F, 0)).mul(d1)
                    .fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
            var d2 = FloatVector.broadcast(F, x[x2 + xb + 16]);
            var i20 = t20.reinterpretAsInts();
            ((FloatVector) i20.lanewise(LSHL, 16).add(i20).lanewise(ASHR, 16).convert(I2F, 0)).mul(d2)
                    .fma(s0, FloatVector.fromArray(F, out, 2 * GROUP)).intoArray(out, 2 * GROUP);
            var i21 = t21.reinterpretAsInts();
            ((FloatVector) i21.lanewise(LSHL, 16).add(i21).lanewise(ASHR, 16).convert(I2F, 0)).mul(d2)
                    .fma(s1, FloatVector.fromArray(F, out, 2 * GROUP + P)).intoArray(out, 2 * GROUP + P);
            var i22 = t22.reinterpretAsInts();
            ((FloatVector) i22.lanewise(LSHL, 16).add(i22).lanewise(ASHR, 16).convert(I2F, 0)).mul(d2)
                    .fma(s2, FloatVector.fromArray(F, out, 2 * GROUP + 2 * P)).intoArray(out, 2 * GROUP + 2 * P);
            var i23 = t23.reinterpretAsInts();
            ((FloatVector) i23.lanewise(LSHL, 16).add(i23).lanewise(ASHR, 16).convert(I2F, 0)).mul(d2)
                    .fma(s3, FloatVector.fromArray(F, out, 2 * GROUP + 3 * P)).intoArray(out, 2 * GROUP + 3 * P);
            var d3 = FloatVector.broadcast(F, x[x3 + xb + 16]);
            var i30 = t30.reinterpretAsInts();
            ((FloatVector) i30.lanewise(LSHL, 16).add(i30).lanewise(ASHR, 16).convert(I2F, 0)).mul(d3)
                    .fma(s0, FloatVector.fromArray(F, out, 3 * GROUP)).intoArray(out, 3 * GROUP);
            var i31 = t31.reinterpretAsInts();
            ((FloatVector) i31.lanewise(LSHL, 16).add(i31).lanewise(ASHR, 16).convert(I2F, 0)).mul(d3)
                    .fma(s1, FloatVector.fromArray(F, out, 3 * GROUP + P)).intoArray(out, 3 * GROUP + P);
            var i32 = t32.reinterpretAsInts();
            ((FloatVector) i32.lanewise(LSHL, 16).add(i32).lanewise(ASHR, 16).convert(I2F, 0)).mul(d3)
                    .fma(s2, FloatVector.fromArray(F, out, 3 * GROUP + 2 * P)).intoArray(out, 3 * GROUP + 2 * P);
            var i33 = t33.reinterpretAsInts();
            ((FloatVector) i33.lanewise(LSHL, 16).add(i33).lanewise(ASHR, 16).convert(I2F, 0)).mul(d3)
                    .fma(s3, FloatVector.fromArray(F, out, 3 * GROUP + 3 * P)).intoArray(out, 3 * GROUP + 3 * P);
        }
    }

    @Override
    void dequantize(int panel, int k0, int kc, float[] buf, int off, int stride) {
        long gb = groupBlock(panel, k0 / 32);
        int p = panel % 4, left = 16 - 16 * (p % 2); // an even panel's scale is the low half
        for (int kb = 0; kb < kc; kb += 32, gb += 4L * BLOCK_BYTES) {
            var s = IntVector.fromMemorySegment(I, data, gb + 2L * P * (p & ~1), LE)
                    .lanewise(LSHL, left).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var minus8s = s.mul(-8f);
            for (int c = 0; c < 4; c++) {
                var q = IntVector.fromMemorySegment(I, data, gb + 4L * P * (2 + 4 * c + p), LE);
                for (int j = 0; j < 8; j++) { // q * 2^4j * (scale * 2^-4j) - 8 * scale; nibble 7 shifted down (q * 2^28 would take the sign bit)
                    var w = j == 7 ? q.lanewise(LSHR, 28) : q.lanewise(AND, 0xF << 4 * j);
                    ((FloatVector) w.convert(I2F, 0)).fma(s.mul(Math.scalb(1f, j == 7 ? 0 : -4 * j)), minus8s)
                            .intoArray(buf, off + (kb + column(c, j)) * stride);
                }
            }
        }
    }

    /** The column of a block that nibble j of chunk c holds: 4c + j, or for the high half 16 + 4c + j - 4. */
    static int column(int c, int j) {
        return j < 4 ? 4 * c + j : 12 + 4 * c + j;
    }

    @Override
    float weight(int row, int col) {
        int panel = row / P, p = panel % 4, lane = row % P, i = col % 32;
        long gb = groupBlock(panel, col / 32);
        float scale = Float.float16ToFloat(data.get(ValueLayout.JAVA_SHORT_UNALIGNED, scaleAt(gb, p, lane)));
        int packed = data.get(ValueLayout.JAVA_INT_UNALIGNED, chunkAt(gb, p, lane, i % 16 / 4));
        int j = i % 4 + (i < 16 ? 0 : 4);
        return scale * ((packed >>> 4 * j & 15) - 8);
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
                        int i = column(c, j);
                        int b = q4.data.get(ValueLayout.JAVA_BYTE, from + 2 + i % 16) & 0xFF;
                        int q = i < 16 ? b & 15 : b >> 4;
                        packed |= q << (4 * j);
                    }
                    data.set(ValueLayout.JAVA_INT_UNALIGNED, chunkAt(gb, p, lane, c), packed);
                }
            }
        }
    }
}
