package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;
import static jdk.incubator.vector.VectorOperators.AND;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LSHR;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * int8 weights with one f16 scale per row per block of 32 columns, in panels of P rows grouped by
 * four: per block, the group's 4P scales, then per column the quants of the group's four panels
 * as P ints, byte j of int l being panel j's row l. One int load holds a column of all four panels; panel j's weights are byte j
 * moved to the top byte of each lane and the rest masked off (one shift, one AND or both), then
 * converted: the quant times 2^24, exactly, the 2^-24 folded into the block scale. No lane
 * crosses, so the decode stays off the shuffle unit that the FMAs share, where a sign-extending
 * widening load per panel (vpmovsxbd) did not. Measured on AMD EPYC Zen 4, builds alternating,
 * MatBench on random Q8_0 weights: 151936x2048 x 16 rows, 2 threads, 58.3/58.0 -> 52.8/53.1 ms;
 * 768x2048 one thread 4 rows 154/151 -> 138/138 us, 1 row 73/71 -> 71/72; the MoE file's decode of 16
 * sequences 71.7/74.2 -> 83.8/83.5 tok/s.
 *
 * <p>The scales stay f16, as in ggml, because decode streams the weights from DRAM: f32 scales
 * would read 36 bytes per 32 weights instead of 34 (6% more). They are never negative, so that an
 * f16 becomes an fp32 with two integer operations and one multiply (see the decoding note below).
 *
 * <p>What packs into it: Q8_0 (lossless: ggml's scales and quants as they are; a block with a
 * negative scale, which ggml never writes, is requantized), Q5_0 and IQ4_NL (lossless: Q5_0's
 * quants minus 16, IQ4_NL's table levels, -127..113, with the block's scale, both negated where the
 * scale is negative, as ggml writes Q5_0's whenever the block's extreme is positive), the other
 * k-quants, Q4_1, Q5_1 and IQ4_XS (requantized: the block's weights as floats, scale max |w| / 127
 * rounded up to an f16, quants rounded with that scale, as ggml quantizes Q8_0: each weight off by
 * at most half an int8 step of its 32-column block, an 8th of the step of a Q5_K sub-block, a 4th of that of the block's coarser
 * Q6_K sub-block). Q4_K has 4-bit panels of its own ({@link PackedQ4_K}).
 */
final class PackedInt8 extends PackedMatrix {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final int BLOCK = 32;
    /** Bytes per block of a panel: P f16 scales, then 32 x P quants. */
    private static final int BLOCK_BYTES = 2 * P + BLOCK * P;
    private final DType source;

    PackedInt8(MemorySegment data, int rows, int cols, DType source) {
        super(data, rows, cols, panelBytes(cols), STREAM_ROWS);
        this.source = source;
    }

    static long panelBytes(int cols) {
        return (long) cols / BLOCK * BLOCK_BYTES;
    }

    /** The checkpoint's type these weights came from. */
    @Override
    public DType type() {
        return source;
    }

    /*
     * A group's four panels share each block: [scales of panels 0|1][scales of panels 2|3][column 0
     * of panels 0..3][column 1 ...], 4P bytes per column (byte 4l + j: row l of panel j), so that the
     * kernels, which read column k of the four panels together, read ascending addresses. Int lane l
     * of a scale pair holds row l's scale of the even panel in its low half and of the odd panel in
     * its high half.
     *
     * The one- and two-row passes count their 32-column loops on the weights' long offset (at), the
     * column k a second counter. C2 unrolls an int loop of 32 iterations completely, and with no loop
     * left the bounds checks of the long segment offsets stay at every load: ~20 scalar instructions
     * (cmov clamps) per 64-byte (512-bit) load, read in the compiled code. Counted on the offset, the
     * loop has its segment checks hoisted (the input array's index check remains). Intel Xeon VM,
     * 2 threads, builds alternating: MatBench Q8_0 768x2048 one row 130/141 -> 97/106 us; the MoE
     * file's decode 15.3/15.9 -> 18.7/18.8 tok/s (one sequence) and 42.7/42.0 -> 46.4/47.0 (16);
     * Qwen3-0.6B Q8_0, one sequence, 19.6/17.5 -> 20.9/19.9. The four- and eight-row passes, bound by
     * their FMAs, keep the int loop: so counted, MatBench Q8_0 2048x1024 16 rows (two eight-row
     * passes) ran 76-77 -> 69-72 G weight-rows/s, and 4, 5 and 12 rows (matvec4 alone so counted)
     * within the noise (4 rows, best of five, 184-206 against 182-185 us).
     *
     * The kernels below write their Vector API calls out instead of calling helpers of this class:
     * past C2's parse-time node limit (NodeCountInliningCutoff) it refuses to inline ordinary
     * methods, and a helper left out of line boxes every vector it takes or returns (measured: with
     * the f16 decode in a helper method, matvec's last call of it stayed out of line, 25% slower),
     * while the Vector API's own methods are always inlined, late if need be.
     *
     * Decoding, per 16 lanes:
     * - quants of panel j from the int vector q of a column:  q << 24 (j = 0), (q << 16) & 0xFF000000,
     *   (q << 8) & 0xFF000000, q & 0xFF000000 (j = 3), converted (I2F): the quant times 2^24, exact;
     * - f16 scales of a pair s:  even panel (s << 16) >>> 3, odd panel (s >>> 3) & 0x0FFFE000: the
     *   f16's exponent and mantissa at fp32's positions (its sign is clear), which reads the value
     *   times 2^-112 (the exponent biases are 127 and 15; f16 subnormals become fp32 subnormals), and
     *   one multiply by 2^88 gives the value times 2^-24, exactly, undoing the quants' 2^24. Scaling
     *   by powers of two is exact, so the block sums are those of the plain quants times 2^24 (short
     *   of fp32's range: a block sum past 2^104, from inputs no model produces).
     */

    /** Start of block {@code block} of the group holding panel {@code panel}. */
    private long groupBlock(int panel, int block) {
        return offset(panel - panel % 4, block, BLOCK_BYTES);
    }

    private long scaleAt(long groupBlock, int panelInGroup, int lane) {
        return groupBlock + 4L * P * (panelInGroup / 2) + 4L * lane + 2 * (panelInGroup % 2);
    }

    private long quantAt(long groupBlock, int panelInGroup, int lane, int i) {
        return groupBlock + 8L * P + 4L * P * i + 4 * lane + panelInGroup;
    }

    /**
     * Four streams: the group's columns in four quarters, read side by side, so that four runs of
     * memory are in flight instead of one. A one-row pass does little arithmetic per byte, and on a
     * machine whose memory latency is high (measured here: an Intel Xeon VM, ~220 ns to DRAM, where
     * compute and DRAM did not overlap with one stream: 768x2048 from DRAM 12 GB/s on 2 threads
     * against 29 from L3) a single stream leaves the memory system idle; with four, MatBench Q8_0
     * 768x2048 one row from DRAM 11.6-12.0 -> 15.1-18.2 GB/s and the MoE file's one-sequence decode
     * 12.2-13.1 -> 16.2-16.7 tok/s. Blocks past the last whole quarter (0-3) run after, in one stream.
     */
    @Override
    void matvec(int group, float[] x, int xOff, float[] out) {
        int quarter = cols / BLOCK / 4 * BLOCK; // columns per stream
        long gb = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES, span = quarter / BLOCK * step;
        var a0 = FloatVector.zero(F);
        var a1 = FloatVector.zero(F);
        var a2 = FloatVector.zero(F);
        var a3 = FloatVector.zero(F);
        for (int kb = 0; kb < quarter; kb += BLOCK, gb += step) {
            // t, u, v, w: each stream's block sums without the scale, scaled once per block
            var t0 = FloatVector.zero(F);
            var t1 = FloatVector.zero(F);
            var t2 = FloatVector.zero(F);
            var t3 = FloatVector.zero(F);
            var u0 = FloatVector.zero(F);
            var u1 = FloatVector.zero(F);
            var u2 = FloatVector.zero(F);
            var u3 = FloatVector.zero(F);
            var v0 = FloatVector.zero(F);
            var v1 = FloatVector.zero(F);
            var v2 = FloatVector.zero(F);
            var v3 = FloatVector.zero(F);
            var w0 = FloatVector.zero(F);
            var w1 = FloatVector.zero(F);
            var w2 = FloatVector.zero(F);
            var w3 = FloatVector.zero(F);
            int k = 0;
            for (long at = gb + 8L * P, end = at + 4L * P * BLOCK; at < end; at += 4L * P, k++) {
                var x0 = FloatVector.broadcast(F, x[xOff + kb + k]);
                var q0 = IntVector.fromMemorySegment(I, data, at, LE);
                t0 = ((FloatVector) q0.lanewise(LSHL, 24).convert(I2F, 0)).fma(x0, t0);
                t1 = ((FloatVector) q0.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x0, t1);
                t2 = ((FloatVector) q0.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x0, t2);
                t3 = ((FloatVector) q0.lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x0, t3);
                var x1 = FloatVector.broadcast(F, x[xOff + quarter + kb + k]);
                var q1 = IntVector.fromMemorySegment(I, data, at + span, LE);
                u0 = ((FloatVector) q1.lanewise(LSHL, 24).convert(I2F, 0)).fma(x1, u0);
                u1 = ((FloatVector) q1.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x1, u1);
                u2 = ((FloatVector) q1.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x1, u2);
                u3 = ((FloatVector) q1.lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x1, u3);
                var x2 = FloatVector.broadcast(F, x[xOff + 2 * quarter + kb + k]);
                var q2 = IntVector.fromMemorySegment(I, data, at + 2 * span, LE);
                v0 = ((FloatVector) q2.lanewise(LSHL, 24).convert(I2F, 0)).fma(x2, v0);
                v1 = ((FloatVector) q2.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x2, v1);
                v2 = ((FloatVector) q2.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x2, v2);
                v3 = ((FloatVector) q2.lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x2, v3);
                var x3 = FloatVector.broadcast(F, x[xOff + 3 * quarter + kb + k]);
                var q3 = IntVector.fromMemorySegment(I, data, at + 3 * span, LE);
                w0 = ((FloatVector) q3.lanewise(LSHL, 24).convert(I2F, 0)).fma(x3, w0);
                w1 = ((FloatVector) q3.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x3, w1);
                w2 = ((FloatVector) q3.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x3, w2);
                w3 = ((FloatVector) q3.lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x3, w3);
            }
            IntVector s01, s23;
            s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            a0 = t0.fma(s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a0);
            a1 = t1.fma(s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a1);
            a2 = t2.fma(s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a2);
            a3 = t3.fma(s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a3);
            s01 = IntVector.fromMemorySegment(I, data, gb + span, LE);
            s23 = IntVector.fromMemorySegment(I, data, gb + span + 4 * P, LE);
            a0 = u0.fma(s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a0);
            a1 = u1.fma(s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a1);
            a2 = u2.fma(s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a2);
            a3 = u3.fma(s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a3);
            s01 = IntVector.fromMemorySegment(I, data, gb + 2 * span, LE);
            s23 = IntVector.fromMemorySegment(I, data, gb + 2 * span + 4 * P, LE);
            a0 = v0.fma(s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a0);
            a1 = v1.fma(s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a1);
            a2 = v2.fma(s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a2);
            a3 = v3.fma(s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a3);
            s01 = IntVector.fromMemorySegment(I, data, gb + 3 * span, LE);
            s23 = IntVector.fromMemorySegment(I, data, gb + 3 * span + 4 * P, LE);
            a0 = w0.fma(s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a0);
            a1 = w1.fma(s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a1);
            a2 = w2.fma(s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a2);
            a3 = w3.fma(s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a3);
        }
        a0.intoArray(out, 0);
        a1.intoArray(out, P);
        a2.intoArray(out, 2 * P);
        a3.intoArray(out, 3 * P);
        if (4 * quarter < cols) {
            matvecTail(group, x, xOff, 4 * quarter / BLOCK, out);
        }
    }

    /**
     * {@link #matvec}'s blocks from block {@code from} on (the tail), in one stream, added to out. A method of its
     * own: in one method with the four streams the kernel is too large for C1 ("out of virtual
     * registers"), and a method C1 gives up on can stay in the Vector API's Java fallback.
     */
    private void matvecTail(int group, float[] x, int xOff, int from, float[] out) {
        long gb = groupBlock(4 * group, from), step = 4L * BLOCK_BYTES;
        var a0 = FloatVector.fromArray(F, out, 0);
        var a1 = FloatVector.fromArray(F, out, P);
        var a2 = FloatVector.fromArray(F, out, 2 * P);
        var a3 = FloatVector.fromArray(F, out, 3 * P);
        for (int kb = from * BLOCK; kb < cols; kb += BLOCK, gb += step) {
            var t0 = FloatVector.zero(F);
            var t1 = FloatVector.zero(F);
            var t2 = FloatVector.zero(F);
            var t3 = FloatVector.zero(F);
            int k = 0;
            for (long at = gb + 8L * P, end = at + 4L * P * BLOCK; at < end; at += 4L * P, k++) {
                var x0 = FloatVector.broadcast(F, x[xOff + kb + k]);
                var q0 = IntVector.fromMemorySegment(I, data, at, LE);
                t0 = ((FloatVector) q0.lanewise(LSHL, 24).convert(I2F, 0)).fma(x0, t0);
                t1 = ((FloatVector) q0.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x0, t1);
                t2 = ((FloatVector) q0.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x0, t2);
                t3 = ((FloatVector) q0.lanewise(AND, 0xFF000000).convert(I2F, 0)).fma(x0, t3);
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            a0 = t0.fma(s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a0);
            a1 = t1.fma(s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a1);
            a2 = t2.fma(s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f), a2);
            a3 = t3.fma(s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f), a3);
        }
        a0.intoArray(out, 0);
        a1.intoArray(out, P);
        a2.intoArray(out, 2 * P);
        a3.intoArray(out, 3 * P);
    }

    /**
     * The block that a pass of more rows takes in turn {@code i}: the order in which {@link #matvec}'s
     * four streams add their blocks up (block 0 of each quarter, then block 1 of each, ..., then the
     * tail), so that a row's result is bit for bit the same in every streamed pass, alone or with others.
     */
    private static int blockInTurn(int i, int blocks) {
        int quarter = blocks / 4;
        return i < 4 * quarter ? i % 4 * quarter + i / 4 : i;
    }

    /**
     * Two streams: turns i and i + 1 of {@link #blockInTurn} (blocks of two different quarters of the
     * columns, up to the tail) side by side, for more memory in flight, as {@link #matvec}'s four
     * streams (a two-token MoE expert reads its weights from DRAM); the blocks are added up in turn,
     * as alone.
     */
    @Override
    void matvec2(int group, float[] x, int x0, int x1, float[] out) {
        java.util.Arrays.fill(out, 0, 2 * GROUP, 0f);
        int blocks = cols / BLOCK, paired = blocks / 4 * 4;
        long g0 = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES;
        for (int i = 0; i < paired; i += 2) {
            int blockA = blockInTurn(i, blocks), blockB = blockInTurn(i + 1, blocks), ka = blockA * BLOCK, kb = blockB * BLOCK;
            long ga = g0 + blockA * step, gb = g0 + blockB * step;
            // t, u: blocks A and B; t<row><panel>: block sums without the scale
            var t00 = FloatVector.zero(F);
            var t01 = FloatVector.zero(F);
            var t02 = FloatVector.zero(F);
            var t03 = FloatVector.zero(F);
            var t10 = FloatVector.zero(F);
            var t11 = FloatVector.zero(F);
            var t12 = FloatVector.zero(F);
            var t13 = FloatVector.zero(F);
            var u00 = FloatVector.zero(F);
            var u01 = FloatVector.zero(F);
            var u02 = FloatVector.zero(F);
            var u03 = FloatVector.zero(F);
            var u10 = FloatVector.zero(F);
            var u11 = FloatVector.zero(F);
            var u12 = FloatVector.zero(F);
            var u13 = FloatVector.zero(F);
            long gbApart = gb - ga; // the other block, at a fixed distance
            int k = 0;
            for (long at = ga + 8L * P, end = at + 4L * P * BLOCK; at < end; at += 4L * P, k++) {
                var qt = IntVector.fromMemorySegment(I, data, at, LE);
                var tv0 = FloatVector.broadcast(F, x[x0 + ka + k]);
                var tv1 = FloatVector.broadcast(F, x[x1 + ka + k]);
                var tw = (FloatVector) qt.lanewise(LSHL, 24).convert(I2F, 0);
                t00 = tw.fma(tv0, t00);
                t10 = tw.fma(tv1, t10);
                tw = (FloatVector) qt.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0);
                t01 = tw.fma(tv0, t01);
                t11 = tw.fma(tv1, t11);
                tw = (FloatVector) qt.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0);
                t02 = tw.fma(tv0, t02);
                t12 = tw.fma(tv1, t12);
                tw = (FloatVector) qt.lanewise(AND, 0xFF000000).convert(I2F, 0);
                t03 = tw.fma(tv0, t03);
                t13 = tw.fma(tv1, t13);
                var qu = IntVector.fromMemorySegment(I, data, at + gbApart, LE);
                var uv0 = FloatVector.broadcast(F, x[x0 + kb + k]);
                var uv1 = FloatVector.broadcast(F, x[x1 + kb + k]);
                var uw = (FloatVector) qu.lanewise(LSHL, 24).convert(I2F, 0);
                u00 = uw.fma(uv0, u00);
                u10 = uw.fma(uv1, u10);
                uw = (FloatVector) qu.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0);
                u01 = uw.fma(uv0, u01);
                u11 = uw.fma(uv1, u11);
                uw = (FloatVector) qu.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0);
                u02 = uw.fma(uv0, u02);
                u12 = uw.fma(uv1, u12);
                uw = (FloatVector) qu.lanewise(AND, 0xFF000000).convert(I2F, 0);
                u03 = uw.fma(uv0, u03);
                u13 = uw.fma(uv1, u13);
            }
            IntVector s01, s23;
            FloatVector s0, s1, s2, s3;
            s01 = IntVector.fromMemorySegment(I, data, ga, LE);
            s23 = IntVector.fromMemorySegment(I, data, ga + 4 * P, LE);
            s0 = s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            s1 = s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
            s2 = s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            s3 = s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
            t00.fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
            t01.fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
            t02.fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
            t03.fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
            t10.fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
            t11.fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
            t12.fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
            t13.fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
            s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            s0 = s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            s1 = s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
            s2 = s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            s3 = s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
            u00.fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
            u01.fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
            u02.fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
            u03.fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
            u10.fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
            u11.fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
            u12.fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
            u13.fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
        }
        if (paired < blocks) {
            matvec2Tail(group, x, x0, x1, paired, out);
        }
    }

    /** {@link #matvec2}'s blocks from block {@code from} on (the tail, in turn), added to out; apart for C1, as {@link #matvecTail}. */
    private void matvec2Tail(int group, float[] x, int x0, int x1, int from, float[] out) {
        long g0 = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES;
        for (int block = from, blocks = cols / BLOCK; block < blocks; block++) {
            int kb = block * BLOCK;
            long gb = g0 + block * step;
            var t00 = FloatVector.zero(F); // t<row><panel>: block sums without the scale
            var t01 = FloatVector.zero(F);
            var t02 = FloatVector.zero(F);
            var t03 = FloatVector.zero(F);
            var t10 = FloatVector.zero(F);
            var t11 = FloatVector.zero(F);
            var t12 = FloatVector.zero(F);
            var t13 = FloatVector.zero(F);
            int k = 0;
            for (long at = gb + 8L * P, end = at + 4L * P * BLOCK; at < end; at += 4L * P, k++) {
                var v0 = FloatVector.broadcast(F, x[x0 + kb + k]);
                var v1 = FloatVector.broadcast(F, x[x1 + kb + k]);
                var q = IntVector.fromMemorySegment(I, data, at, LE);
                var w = (FloatVector) q.lanewise(LSHL, 24).convert(I2F, 0);
                t00 = w.fma(v0, t00);
                t10 = w.fma(v1, t10);
                w = (FloatVector) q.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0);
                t01 = w.fma(v0, t01);
                t11 = w.fma(v1, t11);
                w = (FloatVector) q.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0);
                t02 = w.fma(v0, t02);
                t12 = w.fma(v1, t12);
                w = (FloatVector) q.lanewise(AND, 0xFF000000).convert(I2F, 0);
                t03 = w.fma(v0, t03);
                t13 = w.fma(v1, t13);
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var s0 = s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            var s1 = s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
            var s2 = s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            var s3 = s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
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
        long g0 = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES;
        for (int i = 0, blocks = cols / BLOCK; i < blocks; i++) {
            int block = blockInTurn(i, blocks), kb = block * BLOCK;
            long gb = g0 + block * step;
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
            for (int k = 0; k < BLOCK; k++) {
                long at = gb + 8L * P + 4L * P * k;
                int c = kb + k;
                var v0 = FloatVector.broadcast(F, x[x0 + c]);
                var v1 = FloatVector.broadcast(F, x[x1 + c]);
                var v2 = FloatVector.broadcast(F, x[x2 + c]);
                var v3 = FloatVector.broadcast(F, x[x3 + c]);
                var q = IntVector.fromMemorySegment(I, data, at, LE);
                var w = (FloatVector) q.lanewise(LSHL, 24).convert(I2F, 0);
                t00 = w.fma(v0, t00);
                t10 = w.fma(v1, t10);
                t20 = w.fma(v2, t20);
                t30 = w.fma(v3, t30);
                w = (FloatVector) q.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0);
                t01 = w.fma(v0, t01);
                t11 = w.fma(v1, t11);
                t21 = w.fma(v2, t21);
                t31 = w.fma(v3, t31);
                w = (FloatVector) q.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0);
                t02 = w.fma(v0, t02);
                t12 = w.fma(v1, t12);
                t22 = w.fma(v2, t22);
                t32 = w.fma(v3, t32);
                w = (FloatVector) q.lanewise(AND, 0xFF000000).convert(I2F, 0);
                t03 = w.fma(v0, t03);
                t13 = w.fma(v1, t13);
                t23 = w.fma(v2, t23);
                t33 = w.fma(v3, t33);
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var s0 = s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            var s1 = s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
            var s2 = s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            var s3 = s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
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

    /**
     * Eight rows in two halves per block: panels 0 and 1 for all eight rows (16 accumulators), then
     * panels 2 and 3 over the same block again (from L1): 32 accumulators at once would not fit the
     * 32 vector registers. Each weight is still decoded once for eight rows, where two {@link
     * #matvec4} passes decode it twice: the decode's shifts and conversions run on one port on
     * Intel cores (p0), so fewer of them per multiply-add is what a multi-row pass gains there. The
     * halves are written out: one loop over them, its shifts by a variable count, ran 8-15% slower
     * (MatBench Q8_0 4096x2048, 8 rows, both versions alternating in one JVM: 77-89 against 94-97 G
     * weight-rows/s).
     */
    @Override
    void matvec8(int group, float[] x, int x0, int stride, float[] out) {
        java.util.Arrays.fill(out, 0, 8 * GROUP, 0f);
        long g0 = groupBlock(4 * group, 0), step = 4L * BLOCK_BYTES;
        for (int i = 0, blocks = cols / BLOCK; i < blocks; i++) {
            int block = blockInTurn(i, blocks), kb = block * BLOCK;
            long gb = g0 + block * step;
            // panels 0 and 1: t<row><panel>, block sums without the scale
            var t00 = FloatVector.zero(F);
            var t01 = FloatVector.zero(F);
            var t10 = FloatVector.zero(F);
            var t11 = FloatVector.zero(F);
            var t20 = FloatVector.zero(F);
            var t21 = FloatVector.zero(F);
            var t30 = FloatVector.zero(F);
            var t31 = FloatVector.zero(F);
            var t40 = FloatVector.zero(F);
            var t41 = FloatVector.zero(F);
            var t50 = FloatVector.zero(F);
            var t51 = FloatVector.zero(F);
            var t60 = FloatVector.zero(F);
            var t61 = FloatVector.zero(F);
            var t70 = FloatVector.zero(F);
            var t71 = FloatVector.zero(F);
            for (int k = 0; k < BLOCK; k++) {
                var q = IntVector.fromMemorySegment(I, data, gb + 8L * P + 4L * P * k, LE);
                var w0 = (FloatVector) q.lanewise(LSHL, 24).convert(I2F, 0);
                var w1 = (FloatVector) q.lanewise(LSHL, 16).lanewise(AND, 0xFF000000).convert(I2F, 0);
                int c = kb + k;
                var v0 = FloatVector.broadcast(F, x[x0 + c]);
                t00 = w0.fma(v0, t00);
                t01 = w1.fma(v0, t01);
                var v1 = FloatVector.broadcast(F, x[x0 + stride + c]);
                t10 = w0.fma(v1, t10);
                t11 = w1.fma(v1, t11);
                var v2 = FloatVector.broadcast(F, x[x0 + 2 * stride + c]);
                t20 = w0.fma(v2, t20);
                t21 = w1.fma(v2, t21);
                var v3 = FloatVector.broadcast(F, x[x0 + 3 * stride + c]);
                t30 = w0.fma(v3, t30);
                t31 = w1.fma(v3, t31);
                var v4 = FloatVector.broadcast(F, x[x0 + 4 * stride + c]);
                t40 = w0.fma(v4, t40);
                t41 = w1.fma(v4, t41);
                var v5 = FloatVector.broadcast(F, x[x0 + 5 * stride + c]);
                t50 = w0.fma(v5, t50);
                t51 = w1.fma(v5, t51);
                var v6 = FloatVector.broadcast(F, x[x0 + 6 * stride + c]);
                t60 = w0.fma(v6, t60);
                t61 = w1.fma(v6, t61);
                var v7 = FloatVector.broadcast(F, x[x0 + 7 * stride + c]);
                t70 = w0.fma(v7, t70);
                t71 = w1.fma(v7, t71);
            }
            var s01 = IntVector.fromMemorySegment(I, data, gb, LE);
            var s0 = s01.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            var s1 = s01.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
            t00.fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
            t01.fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
            t10.fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
            t11.fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
            t20.fma(s0, FloatVector.fromArray(F, out, 2 * GROUP)).intoArray(out, 2 * GROUP);
            t21.fma(s1, FloatVector.fromArray(F, out, 2 * GROUP + P)).intoArray(out, 2 * GROUP + P);
            t30.fma(s0, FloatVector.fromArray(F, out, 3 * GROUP)).intoArray(out, 3 * GROUP);
            t31.fma(s1, FloatVector.fromArray(F, out, 3 * GROUP + P)).intoArray(out, 3 * GROUP + P);
            t40.fma(s0, FloatVector.fromArray(F, out, 4 * GROUP)).intoArray(out, 4 * GROUP);
            t41.fma(s1, FloatVector.fromArray(F, out, 4 * GROUP + P)).intoArray(out, 4 * GROUP + P);
            t50.fma(s0, FloatVector.fromArray(F, out, 5 * GROUP)).intoArray(out, 5 * GROUP);
            t51.fma(s1, FloatVector.fromArray(F, out, 5 * GROUP + P)).intoArray(out, 5 * GROUP + P);
            t60.fma(s0, FloatVector.fromArray(F, out, 6 * GROUP)).intoArray(out, 6 * GROUP);
            t61.fma(s1, FloatVector.fromArray(F, out, 6 * GROUP + P)).intoArray(out, 6 * GROUP + P);
            t70.fma(s0, FloatVector.fromArray(F, out, 7 * GROUP)).intoArray(out, 7 * GROUP);
            t71.fma(s1, FloatVector.fromArray(F, out, 7 * GROUP + P)).intoArray(out, 7 * GROUP + P);
            // panels 2 and 3: t<row><panel>, block sums without the scale
            var t02 = FloatVector.zero(F);
            var t03 = FloatVector.zero(F);
            var t12 = FloatVector.zero(F);
            var t13 = FloatVector.zero(F);
            var t22 = FloatVector.zero(F);
            var t23 = FloatVector.zero(F);
            var t32 = FloatVector.zero(F);
            var t33 = FloatVector.zero(F);
            var t42 = FloatVector.zero(F);
            var t43 = FloatVector.zero(F);
            var t52 = FloatVector.zero(F);
            var t53 = FloatVector.zero(F);
            var t62 = FloatVector.zero(F);
            var t63 = FloatVector.zero(F);
            var t72 = FloatVector.zero(F);
            var t73 = FloatVector.zero(F);
            for (int k = 0; k < BLOCK; k++) {
                var q = IntVector.fromMemorySegment(I, data, gb + 8L * P + 4L * P * k, LE);
                var w2 = (FloatVector) q.lanewise(LSHL, 8).lanewise(AND, 0xFF000000).convert(I2F, 0);
                var w3 = (FloatVector) q.lanewise(AND, 0xFF000000).convert(I2F, 0);
                int c = kb + k;
                var v0 = FloatVector.broadcast(F, x[x0 + c]);
                t02 = w2.fma(v0, t02);
                t03 = w3.fma(v0, t03);
                var v1 = FloatVector.broadcast(F, x[x0 + stride + c]);
                t12 = w2.fma(v1, t12);
                t13 = w3.fma(v1, t13);
                var v2 = FloatVector.broadcast(F, x[x0 + 2 * stride + c]);
                t22 = w2.fma(v2, t22);
                t23 = w3.fma(v2, t23);
                var v3 = FloatVector.broadcast(F, x[x0 + 3 * stride + c]);
                t32 = w2.fma(v3, t32);
                t33 = w3.fma(v3, t33);
                var v4 = FloatVector.broadcast(F, x[x0 + 4 * stride + c]);
                t42 = w2.fma(v4, t42);
                t43 = w3.fma(v4, t43);
                var v5 = FloatVector.broadcast(F, x[x0 + 5 * stride + c]);
                t52 = w2.fma(v5, t52);
                t53 = w3.fma(v5, t53);
                var v6 = FloatVector.broadcast(F, x[x0 + 6 * stride + c]);
                t62 = w2.fma(v6, t62);
                t63 = w3.fma(v6, t63);
                var v7 = FloatVector.broadcast(F, x[x0 + 7 * stride + c]);
                t72 = w2.fma(v7, t72);
                t73 = w3.fma(v7, t73);
            }
            var s23 = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
            var s2 = s23.lanewise(LSHL, 16).lanewise(LSHR, 3).reinterpretAsFloats().mul(0x1p88f);
            var s3 = s23.lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
            t02.fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
            t03.fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
            t12.fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
            t13.fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
            t22.fma(s2, FloatVector.fromArray(F, out, 2 * GROUP + 2 * P)).intoArray(out, 2 * GROUP + 2 * P);
            t23.fma(s3, FloatVector.fromArray(F, out, 2 * GROUP + 3 * P)).intoArray(out, 2 * GROUP + 3 * P);
            t32.fma(s2, FloatVector.fromArray(F, out, 3 * GROUP + 2 * P)).intoArray(out, 3 * GROUP + 2 * P);
            t33.fma(s3, FloatVector.fromArray(F, out, 3 * GROUP + 3 * P)).intoArray(out, 3 * GROUP + 3 * P);
            t42.fma(s2, FloatVector.fromArray(F, out, 4 * GROUP + 2 * P)).intoArray(out, 4 * GROUP + 2 * P);
            t43.fma(s3, FloatVector.fromArray(F, out, 4 * GROUP + 3 * P)).intoArray(out, 4 * GROUP + 3 * P);
            t52.fma(s2, FloatVector.fromArray(F, out, 5 * GROUP + 2 * P)).intoArray(out, 5 * GROUP + 2 * P);
            t53.fma(s3, FloatVector.fromArray(F, out, 5 * GROUP + 3 * P)).intoArray(out, 5 * GROUP + 3 * P);
            t62.fma(s2, FloatVector.fromArray(F, out, 6 * GROUP + 2 * P)).intoArray(out, 6 * GROUP + 2 * P);
            t63.fma(s3, FloatVector.fromArray(F, out, 6 * GROUP + 3 * P)).intoArray(out, 6 * GROUP + 3 * P);
            t72.fma(s2, FloatVector.fromArray(F, out, 7 * GROUP + 2 * P)).intoArray(out, 7 * GROUP + 2 * P);
            t73.fma(s3, FloatVector.fromArray(F, out, 7 * GROUP + 3 * P)).intoArray(out, 7 * GROUP + 3 * P);
        }
    }

    @Override
    void dequantize(int panel, int k0, int kc, float[] buf, int off, int stride) {
        long gb = groupBlock(panel, k0 / BLOCK);
        int p = panel % 4, left = 16 - 16 * (p % 2), shift = 24 - 8 * p; // an even panel's scale is the low half
        for (int kb = 0; kb < kc; kb += BLOCK, gb += 4L * BLOCK_BYTES) {
            var s = IntVector.fromMemorySegment(I, data, gb + 2L * P * (p & ~1), LE)
                    .lanewise(LSHL, left).lanewise(LSHR, 3).lanewise(AND, 0x0FFFE000).reinterpretAsFloats().mul(0x1p88f);
            for (int k = 0; k < BLOCK; k++) {
                var q = IntVector.fromMemorySegment(I, data, gb + 8L * P + 4L * P * k, LE);
                ((FloatVector) q.lanewise(LSHL, shift).lanewise(AND, 0xFF000000).convert(I2F, 0)).mul(s)
                        .intoArray(buf, off + (kb + k) * stride);
            }
        }
    }

    @Override
    float weight(int row, int col) {
        int panel = row / P, p = panel % 4, lane = row % P;
        long gb = groupBlock(panel, col / BLOCK);
        float scale = Float.float16ToFloat(data.get(ValueLayout.JAVA_SHORT_UNALIGNED, scaleAt(gb, p, lane)));
        return scale * data.get(ValueLayout.JAVA_BYTE, quantAt(gb, p, lane, col % BLOCK));
    }

    @Override
    void packPanel(Matrix source, int panel) {
        Q8_0Matrix q8 = source instanceof Q8_0Matrix m ? m : null;
        // formats whose weights are an f16 scale times -127..127: kept as they are, a negative scale's sign moved into the quants
        Block32Matrix signed = source instanceof Q5_0Matrix || source instanceof IQ4_NLMatrix ? (Block32Matrix) source : null;
        float[] row = null; // the rows as floats, for blocks that are requantized
        int p = panel % 4;
        for (int lane = 0; lane < P && panel * P + lane < rows; lane++) {
            int r = panel * P + lane;
            boolean rowRead = false;
            long gb = groupBlock(panel, 0);
            for (int kb = 0; kb < cols; kb += BLOCK, gb += 4L * BLOCK_BYTES) {
                if (q8 != null) {
                    long block = r * q8.rowBytes + (long) kb / BLOCK * Q8_0Matrix.BLOCK_BYTES;
                    short scale = q8.data.get(ValueLayout.JAVA_SHORT_UNALIGNED, block);
                    checkFinite(Float.float16ToFloat(scale), r, kb);
                    if (scale >= 0) { // ggml's scale and quants as they are
                        data.set(ValueLayout.JAVA_SHORT_UNALIGNED, scaleAt(gb, p, lane), scale);
                        for (int i = 0; i < BLOCK; i++) {
                            data.set(ValueLayout.JAVA_BYTE, quantAt(gb, p, lane, i), q8.data.get(ValueLayout.JAVA_BYTE, block + 2 + i));
                        }
                        continue;
                    }
                }
                if (signed != null) {
                    long block = r * signed.rowBytes + (long) kb / BLOCK * signed.type().blockBytes();
                    short scale = signed.data.get(ValueLayout.JAVA_SHORT_UNALIGNED, block);
                    checkFinite(Float.float16ToFloat(scale), r, kb);
                    int sign = scale < 0 ? -1 : 1; // the sign bit: the kernels read non-negative scales
                    data.set(ValueLayout.JAVA_SHORT_UNALIGNED, scaleAt(gb, p, lane), (short) (scale & 0x7FFF));
                    for (int i = 0; i < BLOCK; i++) {
                        data.set(ValueLayout.JAVA_BYTE, quantAt(gb, p, lane, i), (byte) (sign * signed.quant(block, i)));
                    }
                    continue;
                }
                if (!rowRead) {
                    row = row == null ? new float[cols] : row;
                    source.rowTo(r, row, 0);
                    rowRead = true;
                }
                float exact = maxAbs(row, kb) / 127f;
                if (!Float.isFinite(exact)) {
                    int c = kb;
                    while (Float.isFinite(row[c]) && c < kb + BLOCK - 1) {
                        c++;
                    }
                    throw new DamagedWeightsException("row " + r + ", column " + c + ": the weight decodes to " + row[c]
                            + " (a scale or min of the file's " + source.type() + " block is not a finite number)");
                }
                short half = Float.floatToFloat16(exact);
                if (Float.float16ToFloat(half) < exact) {
                    // the next f16 up: 127 steps then reach the block's largest weight. Rounded down, that
                    // weight was clamped, off by up to 0.6 of a step where the scale is an f16 subnormal
                    half++;
                }
                float scale = Float.float16ToFloat(half);
                if (Float.isInfinite(scale)) {
                    throw new DamagedWeightsException("row " + r + ", the block of columns from " + kb + ": its int8 scale " + exact
                            + " (max |w| / 127) is beyond an f16's range (65504); these weights cannot be packed");
                }
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED, scaleAt(gb, p, lane), half);
                for (int i = 0; i < BLOCK; i++) {
                    int q = scale == 0 ? 0 : Math.clamp(Math.round(row[kb + i] / scale), -127, 127);
                    data.set(ValueLayout.JAVA_BYTE, quantAt(gb, p, lane, i), (byte) q);
                }
            }
        }
    }

    private static float maxAbs(float[] x, int from) {
        float max = 0;
        for (int i = from; i < from + BLOCK; i++) {
            max = Math.max(max, Math.abs(x[i]));
        }
        return max;
    }
}
