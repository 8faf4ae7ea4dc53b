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
import jdk.incubator.vector.VectorSpecies;

/**
 * Q4_K in panels, kept at 4.625 bits a weight (148 bytes per row per 256 columns; ggml: 144). A weight of 32-column sub-block j of a
 * 256-column super-block is d * sc_j * q - dmin * m_j (q 0..15; sc_j, m_j 6-bit; d, dmin f16), so a
 * sub-block's dot product with x is d * sc_j * sum(q * x) - dmin * m_j * sum(x). Per super-block
 * and row the panels keep d and dmin as f16, per sub-block and row sc_j and m_j as bytes, and the
 * quants as they are in {@link PackedQ4_0}'s chunk layout (8 per int lane). Lossless: ggml's
 * scales, mins and quants as they are, and every product of an f16 and a 6-bit integer is exact in
 * fp32.
 *
 * <p>Two kernels, by the rows that share a pass over the weights:
 * <ul>
 *   <li>one and two rows (decode of one sequence, and the one or two tokens most MoE experts get in
 *       a step of many sequences) multiply in 16-bit integers against the input quantized to int8
 *       per 32 columns, as {@link PackedQ4_0} does and as llama.cpp multiplies Q4_K by Q8_K
 *       activations: per sub-block sum((q - 8) * x_q) exactly in 16-bit lanes, times the input's
 *       block scale d_x, plus 8 * d_x * sum(x_q) given back, times d * sc_j; the min term dmin * m_j
 *       * B against B = the fp32 sum of x;
 *   <li>four rows (three run as four) multiply fp32 inputs with FMAs: four rows share each decoded
 *       weight, so the multiply-adds bind, and 16-bit sums would need twice the registers (such a
 *       method is too large for C1, and C2's ran 13-19% below this one).
 * </ul>
 * So a row's result depends on the kernel that took it, by up to half an int8 step of each input
 * block (llama.cpp's error for every row). In the 16-bit kernels, as in PackedQ4_0's, an infinite
 * input makes its row's outputs NaN (the fp32 kernel: infinite or NaN), and a block whose inputs
 * reach ~1e36 overflows (8 * d_x * sum(x_q)) to infinity; no model's activations come near. Measured on AMD EPYC Zen 4, 2 threads, builds
 * alternating, against fp32 kernels for every batch: MatBench 4096x2048 from DRAM, 1 row 46 ->
 * 58-65 G weight-rows/s, 2 rows 39-50 -> 75-77, 4 and 16 rows the same (75-82, 84-90); {@code
 * qwen3 bench} on the MoE Q4_K_M file 16 sequences 74.3 and 74.5 -> 80.1 and 80.3 tok/s, one
 * sequence 37.0 and 40.8 -> 44.2 and 42.2.
 *
 * <p>Why not int8 panels, as Q6_K: they read 34 bytes per 32 weights instead of 18.5, and decoding
 * one sequence streams every weight from DRAM per token.
 */
final class PackedQ4_K extends PackedMatrix {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final short NIBBLE = 0xF;
    private static final int SUPER = 256;
    /** Floats per 32-column sub-block of a {@link #streamInput} row: PackedQ4_0's 18, 8 d sum(x_q), B. */
    private static final int INPUT_BLOCK = 20;
    /** Bytes per 32-column sub-block of a panel: P scales, P mins, 32 x P nibbles. */
    private static final int BLOCK_BYTES = 2 * P + 16 * P;
    /** Bytes per super-block of a panel: P f16 d, P f16 dmin, then its 8 sub-blocks. */
    private static final int SUPER_BYTES = 4 * P + 8 * BLOCK_BYTES;

    PackedQ4_K(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, panelBytes(cols), STREAM_ROWS);
        if (cols % SUPER != 0) {
            throw new IllegalArgumentException("Q4_K rows are whole 256-column super-blocks, got " + cols + " columns");
        }
    }

    static long panelBytes(int cols) {
        return (long) cols / SUPER * SUPER_BYTES;
    }

    @Override
    public DType type() {
        return DType.Q4_K;
    }

    /**
     * Each row as the kernels read it ({@link #streamStride} floats). First, per 32-column
     * sub-block: PackedQ4_0's 18 floats (the int8 inputs in pairs, d, the lanes' start values), then 8
     * * d * (sum of x_q), which gives back what the start values took off, and B = sum of x in fp32 in
     * column order, for the mins; the 16-bit kernels read them all, the fp32 kernel B. Then, for the
     * rows that the fp32 kernel takes, x in the panels' nibble order (nibble i of chunk c of a
     * sub-block at 8c + i) times 2^-4i (i < 7; nibble 7 is shifted down, so its input is x as it is).
     * Only the part a row's kernel reads is filled.
     */
    @Override
    float[] streamInput(float[] x, int batch) {
        int stride = streamStride(), quantized = fp32Part();
        int tail = streamedTail(batch); // the rows matvec and matvec2 take
        float[] prepared = new float[batch * stride];
        int[] q = new int[32];
        for (int b = 0; b < batch; b++) {
            for (int from = b * cols, to = b * stride; from < (b + 1) * cols; from += 32, to += INPUT_BLOCK) {
                if (b >= batch - tail) {
                    int sum = PackedQ4_0.quantizeBlock(x, from, prepared, to, q);
                    prepared[to + 18] = 8 * sum * prepared[to + 16];
                }
                float all = 0;
                for (int k = from; k < from + 32; k++) {
                    all += x[k];
                }
                prepared[to + 19] = all;
            }
            if (b < batch - tail) {
                for (int kb = 0, from = b * cols, to = b * stride + quantized; kb < cols; kb += 32) {
                    for (int i = 0; i < 32; i++) { // scalar: a second (128-bit) float species slowed matvec4 2.3x
                        prepared[to + kb + i] = x[from + kb + PackedQ4_0.column(i / 8, i % 8)] * PRESCALE[i % 8];
                    }
                }
            }
        }
        return prepared;
    }

    /** The fp32 kernel's input factor for nibble i: 2^-4i, and 1 for nibble 7, which it shifts down. */
    private static final float[] PRESCALE = {1, 0x1p-4f, 0x1p-8f, 0x1p-12f, 0x1p-16f, 0x1p-20f, 0x1p-24f, 1};

    @Override
    int streamStride() {
        return fp32Part() + cols;
    }

    /** Where a {@link #streamInput} row's fp32 part starts: after its 16-bit kernels' part. */
    private int fp32Part() {
        return cols / 32 * INPUT_BLOCK;
    }

    /*
     * A group's four panels share each super-block: [d of panels 0|1][d 2|3][dmin 0|1][dmin 2|3] (int
     * lane l of a pair: row l's f16 of the even panel in the low half, of the odd panel in the high
     * half), then 8 sub-blocks of [scales][mins][chunk 0 of panels 0..3][chunk 1 ...]: byte p of int
     * lane l of the scales (mins) is row l's sc_j (m_j) of panel p; int lane l of chunk c of a panel
     * holds row l's quants of the sub-block's columns PackedQ4_0.column(c, i), nibble i. The kernels
     * read ascending addresses.
     *
     * The kernels write their Vector API calls out, as PackedQ4_0's do (C2 inlining; see there), and
     * decode, per 16 lanes:
     * - fp32 (matvec4), nibble i of a chunk v:  v & (0xF << 4i), converted: q * 2^4i, exact, times
     *   the input prescaled by 2^-4i; nibble 7 v >>> 28 (q * 2^28 would take the sign bit), times
     *   the input as it is;
     * - 16-bit (matvec, matvec2), a chunk as 2 x 16 short lanes:  nibble i of a lane (v >>> 4i) &
     *   0xF, nibble 3 v >>> 12, times the int8 input pair words, as PackedQ4_0 multiplies;
     * - d or dmin of a pair s:  even panel ((s << 16) >> 3) & 0x8FFFE000, odd panel (s >> 3) &
     *   0x8FFFE000: the value times 2^-112, exactly (see PackedQ4_0), times 2^(112 - 8p) for panel p,
     *   and for dmin times -2^(112 - 8p): the kernels add the min term, negated;
     * - sc_j (m_j) of panel p from the scales (mins) v:  v & (63 << 8p), converted: sc_j * 2^8p,
     *   exact; times panel p's d * 2^-8p gives d * sc_j exactly (11 + 6 significant bits).
     */

    /** Start of super-block {@code sb} of the group holding panel {@code panel}. */
    private long groupSuper(int panel, int sb) {
        return offset(panel - panel % 4, sb, SUPER_BYTES);
    }

    /** Start of sub-block {@code j} (0..7) of a group's super-block. */
    private static long subBlock(long groupSuper, int j) {
        return groupSuper + 16L * P + 4L * BLOCK_BYTES * j;
    }

    /** The f16 d (which 0) or dmin (which 1) of row {@code lane} of panel p of a group's super-block. */
    private static long f16At(long groupSuper, int which, int p, int lane) {
        return groupSuper + 4L * P * (2 * which + p / 2) + 4L * lane + 2 * (p % 2);
    }

    private static long chunkAt(long groupBlock, int p, int lane, int c) {
        return groupBlock + 4L * P * (2 + 4 * c + p) + 4L * lane;
    }

    @Override
    void matvec(int group, float[] x, int xOff, float[] out) {
        long gs = groupSuper(4 * group, 0), step = 4L * SUPER_BYTES;
        var a0 = FloatVector.zero(F);
        var a1 = FloatVector.zero(F);
        var a2 = FloatVector.zero(F);
        var a3 = FloatVector.zero(F);
        var m0 = FloatVector.zero(F); // the min terms, added at the end
        var m1 = FloatVector.zero(F);
        var m2 = FloatVector.zero(F);
        var m3 = FloatVector.zero(F);
        int xb = 0;
        // counted on the offset, as PackedInt8's one- and two-row passes, so that C2 hoists the segment
        // bounds checks: Intel Xeon VM, MatBench Q4_K 2048x1024, builds alternating, two rows 121-137 ->
        // 110-120 us, one row within the noise
        for (long end = gs + step * (cols / SUPER); gs < end; gs += step) {
            var d01 = IntVector.fromMemorySegment(I, data, gs, LE);
            var d23 = IntVector.fromMemorySegment(I, data, gs + 4 * P, LE);
            var d0 = d01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var d1 = d01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p104f);
            var d2 = d23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p96f);
            var d3 = d23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p88f);
            var n01 = IntVector.fromMemorySegment(I, data, gs + 8 * P, LE);
            var n23 = IntVector.fromMemorySegment(I, data, gs + 12 * P, LE);
            var dn0 = n01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p112f);
            var dn1 = n01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p104f);
            var dn2 = n23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p96f);
            var dn3 = n23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p88f);
            for (int j = 0; j < 8; j++, xb += INPUT_BLOCK) {
                long gb = subBlock(gs, j);
                var z0 = FloatVector.broadcast(F, x[xOff + xb + 17]).reinterpretAsShorts(); // -8 * (x_q sums): sums of (q - 8) * x_q
                var t00 = z0;
                var t01 = z0;
                var t02 = z0;
                var t03 = z0;
                for (int c = 0; c < 4; c++) {
                    long at = gb + 4L * P * (2 + 4 * c);
                    var q0 = ShortVector.fromMemorySegment(S, data, at, LE);
                    var q1 = ShortVector.fromMemorySegment(S, data, at + 4 * P, LE);
                    var q2 = ShortVector.fromMemorySegment(S, data, at + 8 * P, LE);
                    var q3 = ShortVector.fromMemorySegment(S, data, at + 12 * P, LE);
                    for (int i = 0; i < 4; i++) {
                        ShortVector w0, w1, w2, w3;
                        if (i == 0) {
                            w0 = q0.lanewise(AND, NIBBLE);
                            w1 = q1.lanewise(AND, NIBBLE);
                            w2 = q2.lanewise(AND, NIBBLE);
                            w3 = q3.lanewise(AND, NIBBLE);
                        } else if (i < 3) {
                            w0 = q0.lanewise(LSHR, 4 * i).lanewise(AND, NIBBLE);
                            w1 = q1.lanewise(LSHR, 4 * i).lanewise(AND, NIBBLE);
                            w2 = q2.lanewise(LSHR, 4 * i).lanewise(AND, NIBBLE);
                            w3 = q3.lanewise(LSHR, 4 * i).lanewise(AND, NIBBLE);
                        } else {
                            w0 = q0.lanewise(LSHR, 12);
                            w1 = q1.lanewise(LSHR, 12);
                            w2 = q2.lanewise(LSHR, 12);
                            w3 = q3.lanewise(LSHR, 12);
                        }
                        var v0 = FloatVector.broadcast(F, x[xOff + xb + 4 * c + i]).reinterpretAsShorts();
                        t00 = t00.add(w0.mul(v0));
                        t01 = t01.add(w1.mul(v0));
                        t02 = t02.add(w2.mul(v0));
                        t03 = t03.add(w3.mul(v0));
                    }
                }
                var sc = IntVector.fromMemorySegment(I, data, gb, LE);
                var mn = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
                var dx0 = FloatVector.broadcast(F, x[xOff + xb + 16]);
                var e0 = FloatVector.broadcast(F, x[xOff + xb + 18]);
                var all = FloatVector.broadcast(F, x[xOff + xb + 19]);
                var s0 = ((FloatVector) sc.lanewise(AND, 63).convert(I2F, 0)).mul(d0);
                var i00 = t00.reinterpretAsInts();
                a0 = ((FloatVector) i00.lanewise(LSHL, 16).add(i00).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx0, e0).fma(s0, a0);
                m0 = ((FloatVector) mn.lanewise(AND, 63).convert(I2F, 0)).mul(dn0).fma(all, m0);
                var s1 = ((FloatVector) sc.lanewise(AND, 63 << 8).convert(I2F, 0)).mul(d1);
                var i01 = t01.reinterpretAsInts();
                a1 = ((FloatVector) i01.lanewise(LSHL, 16).add(i01).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx0, e0).fma(s1, a1);
                m1 = ((FloatVector) mn.lanewise(AND, 63 << 8).convert(I2F, 0)).mul(dn1).fma(all, m1);
                var s2 = ((FloatVector) sc.lanewise(AND, 63 << 16).convert(I2F, 0)).mul(d2);
                var i02 = t02.reinterpretAsInts();
                a2 = ((FloatVector) i02.lanewise(LSHL, 16).add(i02).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx0, e0).fma(s2, a2);
                m2 = ((FloatVector) mn.lanewise(AND, 63 << 16).convert(I2F, 0)).mul(dn2).fma(all, m2);
                var s3 = ((FloatVector) sc.lanewise(AND, 63 << 24).convert(I2F, 0)).mul(d3);
                var i03 = t03.reinterpretAsInts();
                a3 = ((FloatVector) i03.lanewise(LSHL, 16).add(i03).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx0, e0).fma(s3, a3);
                m3 = ((FloatVector) mn.lanewise(AND, 63 << 24).convert(I2F, 0)).mul(dn3).fma(all, m3);
            }
        }
        a0.add(m0).intoArray(out, 0);
        a1.add(m1).intoArray(out, P);
        a2.add(m2).intoArray(out, 2 * P);
        a3.add(m3).intoArray(out, 3 * P);
    }

    @Override
    void matvec2(int group, float[] x, int x0, int x1, float[] out) {
        java.util.Arrays.fill(out, 0, 2 * GROUP, 0f);
        long gs = groupSuper(4 * group, 0), step = 4L * SUPER_BYTES;
        int xb = 0;
        for (long end = gs + step * (cols / SUPER); gs < end; gs += step) { // counted on the offset: see matvec
            var d01 = IntVector.fromMemorySegment(I, data, gs, LE);
            var d23 = IntVector.fromMemorySegment(I, data, gs + 4 * P, LE);
            var d0 = d01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var d1 = d01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p104f);
            var d2 = d23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p96f);
            var d3 = d23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p88f);
            for (int j = 0; j < 8; j++, xb += INPUT_BLOCK) {
                long gb = subBlock(gs, j);
                var z0 = FloatVector.broadcast(F, x[x0 + xb + 17]).reinterpretAsShorts(); // -8 * (x_q sums): sums of (q - 8) * x_q
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
                    for (int i = 0; i < 4; i++) {
                        ShortVector w0, w1, w2, w3;
                        if (i == 0) {
                            w0 = q0.lanewise(AND, NIBBLE);
                            w1 = q1.lanewise(AND, NIBBLE);
                            w2 = q2.lanewise(AND, NIBBLE);
                            w3 = q3.lanewise(AND, NIBBLE);
                        } else if (i < 3) {
                            w0 = q0.lanewise(LSHR, 4 * i).lanewise(AND, NIBBLE);
                            w1 = q1.lanewise(LSHR, 4 * i).lanewise(AND, NIBBLE);
                            w2 = q2.lanewise(LSHR, 4 * i).lanewise(AND, NIBBLE);
                            w3 = q3.lanewise(LSHR, 4 * i).lanewise(AND, NIBBLE);
                        } else {
                            w0 = q0.lanewise(LSHR, 12);
                            w1 = q1.lanewise(LSHR, 12);
                            w2 = q2.lanewise(LSHR, 12);
                            w3 = q3.lanewise(LSHR, 12);
                        }
                        var v0 = FloatVector.broadcast(F, x[x0 + xb + 4 * c + i]).reinterpretAsShorts();
                        var v1 = FloatVector.broadcast(F, x[x1 + xb + 4 * c + i]).reinterpretAsShorts();
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
                var sc = IntVector.fromMemorySegment(I, data, gb, LE);
                var dx0 = FloatVector.broadcast(F, x[x0 + xb + 16]);
                var e0 = FloatVector.broadcast(F, x[x0 + xb + 18]);
                var dx1 = FloatVector.broadcast(F, x[x1 + xb + 16]);
                var e1 = FloatVector.broadcast(F, x[x1 + xb + 18]);
                var s0 = ((FloatVector) sc.lanewise(AND, 63).convert(I2F, 0)).mul(d0);
                var i00 = t00.reinterpretAsInts();
                ((FloatVector) i00.lanewise(LSHL, 16).add(i00).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx0, e0)
                        .fma(s0, FloatVector.fromArray(F, out, 0)).intoArray(out, 0);
                var i10 = t10.reinterpretAsInts();
                ((FloatVector) i10.lanewise(LSHL, 16).add(i10).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx1, e1)
                        .fma(s0, FloatVector.fromArray(F, out, GROUP)).intoArray(out, GROUP);
                var s1 = ((FloatVector) sc.lanewise(AND, 63 << 8).convert(I2F, 0)).mul(d1);
                var i01 = t01.reinterpretAsInts();
                ((FloatVector) i01.lanewise(LSHL, 16).add(i01).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx0, e0)
                        .fma(s1, FloatVector.fromArray(F, out, P)).intoArray(out, P);
                var i11 = t11.reinterpretAsInts();
                ((FloatVector) i11.lanewise(LSHL, 16).add(i11).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx1, e1)
                        .fma(s1, FloatVector.fromArray(F, out, GROUP + P)).intoArray(out, GROUP + P);
                var s2 = ((FloatVector) sc.lanewise(AND, 63 << 16).convert(I2F, 0)).mul(d2);
                var i02 = t02.reinterpretAsInts();
                ((FloatVector) i02.lanewise(LSHL, 16).add(i02).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx0, e0)
                        .fma(s2, FloatVector.fromArray(F, out, 2 * P)).intoArray(out, 2 * P);
                var i12 = t12.reinterpretAsInts();
                ((FloatVector) i12.lanewise(LSHL, 16).add(i12).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx1, e1)
                        .fma(s2, FloatVector.fromArray(F, out, GROUP + 2 * P)).intoArray(out, GROUP + 2 * P);
                var s3 = ((FloatVector) sc.lanewise(AND, 63 << 24).convert(I2F, 0)).mul(d3);
                var i03 = t03.reinterpretAsInts();
                ((FloatVector) i03.lanewise(LSHL, 16).add(i03).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx0, e0)
                        .fma(s3, FloatVector.fromArray(F, out, 3 * P)).intoArray(out, 3 * P);
                var i13 = t13.reinterpretAsInts();
                ((FloatVector) i13.lanewise(LSHL, 16).add(i13).lanewise(ASHR, 16).convert(I2F, 0)).fma(dx1, e1)
                        .fma(s3, FloatVector.fromArray(F, out, GROUP + 3 * P)).intoArray(out, GROUP + 3 * P);
            }
        }
        addMins2(group, x, x0, x1, out);
    }

    /**
     * Four rows in fp32 FMAs against the fp32 part of {@link #streamInput}: four rows share each
     * decoded weight, so the multiply-adds bind, and 16-bit sums would need twice the registers of a
     * four-row pass (C1 gives up on such a method, and C2 spilled: measured 13-19% below this
     * kernel). Nibble i < 7 is masked where it lies, nibble 7 shifted down.
     */
    @Override
    void matvec4(int group, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        java.util.Arrays.fill(out, 0, 4 * GROUP, 0f);
        long gs = groupSuper(4 * group, 0), step = 4L * SUPER_BYTES;
        int f0 = x0 + fp32Part(), f1 = x1 + fp32Part(), f2 = x2 + fp32Part(), f3 = x3 + fp32Part(); // the rows' fp32 inputs
        for (int sb = 0, xb = 0; sb < cols; sb += SUPER, gs += step) {
            for (int j = 0; j < 8; j++, xb += INPUT_BLOCK) {
                long gb = subBlock(gs, j);
                int kb = sb + 32 * j;
                var t00 = FloatVector.zero(F); // t<row><panel>: sub-block sums without the scale
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
                    for (int i = 0; i < 8; i++) {
                        int k = kb + 8 * c + i;
                        var v0 = FloatVector.broadcast(F, x[f0 + k]);
                        var v1 = FloatVector.broadcast(F, x[f1 + k]);
                        var v2 = FloatVector.broadcast(F, x[f2 + k]);
                        var v3 = FloatVector.broadcast(F, x[f3 + k]);
                        var w = (FloatVector) (i == 7 ? q0.lanewise(LSHR, 28) : q0.lanewise(AND, 0xF << 4 * i)).convert(I2F, 0);
                        t00 = w.fma(v0, t00);
                        t10 = w.fma(v1, t10);
                        t20 = w.fma(v2, t20);
                        t30 = w.fma(v3, t30);
                        w = (FloatVector) (i == 7 ? q1.lanewise(LSHR, 28) : q1.lanewise(AND, 0xF << 4 * i)).convert(I2F, 0);
                        t01 = w.fma(v0, t01);
                        t11 = w.fma(v1, t11);
                        t21 = w.fma(v2, t21);
                        t31 = w.fma(v3, t31);
                        w = (FloatVector) (i == 7 ? q2.lanewise(LSHR, 28) : q2.lanewise(AND, 0xF << 4 * i)).convert(I2F, 0);
                        t02 = w.fma(v0, t02);
                        t12 = w.fma(v1, t12);
                        t22 = w.fma(v2, t22);
                        t32 = w.fma(v3, t32);
                        w = (FloatVector) (i == 7 ? q3.lanewise(LSHR, 28) : q3.lanewise(AND, 0xF << 4 * i)).convert(I2F, 0);
                        t03 = w.fma(v0, t03);
                        t13 = w.fma(v1, t13);
                        t23 = w.fma(v2, t23);
                        t33 = w.fma(v3, t33);
                    }
                }
                var b0 = FloatVector.broadcast(F, x[x0 + xb + 19]);
                var b1 = FloatVector.broadcast(F, x[x1 + xb + 19]);
                var b2 = FloatVector.broadcast(F, x[x2 + xb + 19]);
                var b3 = FloatVector.broadcast(F, x[x3 + xb + 19]);
                var sc = IntVector.fromMemorySegment(I, data, gb, LE);
                var mn = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
                // panel by panel, so that few scales are live at once
                var d = IntVector.fromMemorySegment(I, data, gs, LE);
                var n = IntVector.fromMemorySegment(I, data, gs + 8 * P, LE);
                var s = ((FloatVector) sc.lanewise(AND, 63).convert(I2F, 0))
                        .mul(d.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f));
                var m = ((FloatVector) mn.lanewise(AND, 63).convert(I2F, 0))
                        .mul(n.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p112f));
                t00.fma(s, m.fma(b0, FloatVector.fromArray(F, out, 0))).intoArray(out, 0);
                t10.fma(s, m.fma(b1, FloatVector.fromArray(F, out, GROUP))).intoArray(out, GROUP);
                t20.fma(s, m.fma(b2, FloatVector.fromArray(F, out, 2 * GROUP))).intoArray(out, 2 * GROUP);
                t30.fma(s, m.fma(b3, FloatVector.fromArray(F, out, 3 * GROUP))).intoArray(out, 3 * GROUP);
                s = ((FloatVector) sc.lanewise(AND, 63 << 8).convert(I2F, 0))
                        .mul(d.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p104f));
                m = ((FloatVector) mn.lanewise(AND, 63 << 8).convert(I2F, 0))
                        .mul(n.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p104f));
                t01.fma(s, m.fma(b0, FloatVector.fromArray(F, out, P))).intoArray(out, P);
                t11.fma(s, m.fma(b1, FloatVector.fromArray(F, out, GROUP + P))).intoArray(out, GROUP + P);
                t21.fma(s, m.fma(b2, FloatVector.fromArray(F, out, 2 * GROUP + P))).intoArray(out, 2 * GROUP + P);
                t31.fma(s, m.fma(b3, FloatVector.fromArray(F, out, 3 * GROUP + P))).intoArray(out, 3 * GROUP + P);
                d = IntVector.fromMemorySegment(I, data, gs + 4 * P, LE);
                n = IntVector.fromMemorySegment(I, data, gs + 12 * P, LE);
                s = ((FloatVector) sc.lanewise(AND, 63 << 16).convert(I2F, 0))
                        .mul(d.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p96f));
                m = ((FloatVector) mn.lanewise(AND, 63 << 16).convert(I2F, 0))
                        .mul(n.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p96f));
                t02.fma(s, m.fma(b0, FloatVector.fromArray(F, out, 2 * P))).intoArray(out, 2 * P);
                t12.fma(s, m.fma(b1, FloatVector.fromArray(F, out, GROUP + 2 * P))).intoArray(out, GROUP + 2 * P);
                t22.fma(s, m.fma(b2, FloatVector.fromArray(F, out, 2 * GROUP + 2 * P))).intoArray(out, 2 * GROUP + 2 * P);
                t32.fma(s, m.fma(b3, FloatVector.fromArray(F, out, 3 * GROUP + 2 * P))).intoArray(out, 3 * GROUP + 2 * P);
                s = ((FloatVector) sc.lanewise(AND, 63 << 24).convert(I2F, 0))
                        .mul(d.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p88f));
                m = ((FloatVector) mn.lanewise(AND, 63 << 24).convert(I2F, 0))
                        .mul(n.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p88f));
                t03.fma(s, m.fma(b0, FloatVector.fromArray(F, out, 3 * P))).intoArray(out, 3 * P);
                t13.fma(s, m.fma(b1, FloatVector.fromArray(F, out, GROUP + 3 * P))).intoArray(out, GROUP + 3 * P);
                t23.fma(s, m.fma(b2, FloatVector.fromArray(F, out, 2 * GROUP + 3 * P))).intoArray(out, 2 * GROUP + 3 * P);
                t33.fma(s, m.fma(b3, FloatVector.fromArray(F, out, 3 * GROUP + 3 * P))).intoArray(out, 3 * GROUP + 3 * P);
            }
        }
    }

    /**
     * out[r * GROUP ..] += the min terms of input row r (of 2), each summed over the sub-blocks in
     * order as {@link #matvec} sums them, and added last as it adds them.
     */
    private void addMins2(int group, float[] x, int x0, int x1, float[] out) {
        long gs = groupSuper(4 * group, 0), step = 4L * SUPER_BYTES;
        var m00 = FloatVector.zero(F);
        var m01 = FloatVector.zero(F);
        var m02 = FloatVector.zero(F);
        var m03 = FloatVector.zero(F);
        var m10 = FloatVector.zero(F);
        var m11 = FloatVector.zero(F);
        var m12 = FloatVector.zero(F);
        var m13 = FloatVector.zero(F);
        for (int sb = 0, xb = 0; sb < cols; sb += SUPER, gs += step) {
            var n01 = IntVector.fromMemorySegment(I, data, gs + 8 * P, LE);
            var n23 = IntVector.fromMemorySegment(I, data, gs + 12 * P, LE);
            var dn0 = n01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p112f);
            var dn1 = n01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p104f);
            var dn2 = n23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p96f);
            var dn3 = n23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p88f);
            for (int j = 0; j < 8; j++, xb += INPUT_BLOCK) {
                var mn = IntVector.fromMemorySegment(I, data, subBlock(gs, j) + 4 * P, LE);
                var b0 = FloatVector.broadcast(F, x[x0 + xb + 19]);
                var b1 = FloatVector.broadcast(F, x[x1 + xb + 19]);
                var n0 = ((FloatVector) mn.lanewise(AND, 63).convert(I2F, 0)).mul(dn0);
                m00 = n0.fma(b0, m00);
                m10 = n0.fma(b1, m10);
                var n1 = ((FloatVector) mn.lanewise(AND, 63 << 8).convert(I2F, 0)).mul(dn1);
                m01 = n1.fma(b0, m01);
                m11 = n1.fma(b1, m11);
                var n2 = ((FloatVector) mn.lanewise(AND, 63 << 16).convert(I2F, 0)).mul(dn2);
                m02 = n2.fma(b0, m02);
                m12 = n2.fma(b1, m12);
                var n3 = ((FloatVector) mn.lanewise(AND, 63 << 24).convert(I2F, 0)).mul(dn3);
                m03 = n3.fma(b0, m03);
                m13 = n3.fma(b1, m13);
            }
        }
        FloatVector.fromArray(F, out, 0).add(m00).intoArray(out, 0);
        FloatVector.fromArray(F, out, P).add(m01).intoArray(out, P);
        FloatVector.fromArray(F, out, 2 * P).add(m02).intoArray(out, 2 * P);
        FloatVector.fromArray(F, out, 3 * P).add(m03).intoArray(out, 3 * P);
        FloatVector.fromArray(F, out, GROUP).add(m10).intoArray(out, GROUP);
        FloatVector.fromArray(F, out, GROUP + P).add(m11).intoArray(out, GROUP + P);
        FloatVector.fromArray(F, out, GROUP + 2 * P).add(m12).intoArray(out, GROUP + 2 * P);
        FloatVector.fromArray(F, out, GROUP + 3 * P).add(m13).intoArray(out, GROUP + 3 * P);
    }

    @Override
    void dequantize(int panel, int k0, int kc, float[] buf, int off, int stride) {
        int p = panel % 4, left = 16 - 16 * (p % 2); // an even panel's f16 is the low half
        int mask = 63 << 8 * p;
        float unscale = Math.scalb(1f, 112 - 8 * p);
        for (int kb = k0; kb < k0 + kc; kb += 32) {
            long gs = groupSuper(panel, kb / SUPER), gb = subBlock(gs, kb % SUPER / 32);
            var d = IntVector.fromMemorySegment(I, data, gs + 2L * P * (p & ~1), LE)
                    .lanewise(LSHL, left).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(unscale);
            var dmin = IntVector.fromMemorySegment(I, data, gs + 8L * P + 2L * P * (p & ~1), LE)
                    .lanewise(LSHL, left).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(unscale);
            var s = ((FloatVector) IntVector.fromMemorySegment(I, data, gb, LE).lanewise(AND, mask).convert(I2F, 0)).mul(d);
            var minus = ((FloatVector) IntVector.fromMemorySegment(I, data, gb + 4 * P, LE).lanewise(AND, mask).convert(I2F, 0))
                    .mul(dmin).neg();
            for (int c = 0; c < 4; c++) {
                var q = IntVector.fromMemorySegment(I, data, gb + 4L * P * (2 + 4 * c + p), LE);
                for (int i = 0; i < 8; i++) { // q * 2^4i * (d * sc * 2^-4i) - dmin * m; nibble 7 shifted down (q * 2^28 would take the sign bit)
                    var w = i == 7 ? q.lanewise(LSHR, 28) : q.lanewise(AND, 0xF << 4 * i);
                    ((FloatVector) w.convert(I2F, 0)).fma(s.mul(Math.scalb(1f, i == 7 ? 0 : -4 * i)), minus)
                            .intoArray(buf, off + (kb - k0 + PackedQ4_0.column(c, i)) * stride);
                }
            }
        }
    }

    @Override
    float weight(int row, int col) {
        int panel = row / P, p = panel % 4, lane = row % P, i = col % 32;
        long gs = groupSuper(panel, col / SUPER), gb = subBlock(gs, col % SUPER / 32);
        float d = Float.float16ToFloat(data.get(ValueLayout.JAVA_SHORT_UNALIGNED, f16At(gs, 0, p, lane)));
        float dmin = Float.float16ToFloat(data.get(ValueLayout.JAVA_SHORT_UNALIGNED, f16At(gs, 1, p, lane)));
        int sc = data.get(ValueLayout.JAVA_BYTE, gb + 4L * lane + p), m = data.get(ValueLayout.JAVA_BYTE, gb + 4L * P + 4L * lane + p);
        int packed = data.get(ValueLayout.JAVA_INT_UNALIGNED, chunkAt(gb, p, lane, i % 16 / 4));
        int q = packed >>> 4 * (i % 4 + (i < 16 ? 0 : 4)) & 15;
        float scale = d * sc, min = dmin * m; // as Q4_KMatrix computes them
        return scale * q - min;
    }

    @Override
    void packPanel(Matrix source, int panel) {
        var q4 = (Q4_KMatrix) source;
        int p = panel % 4, blockBytes = DType.Q4_K.blockBytes();
        for (int lane = 0; lane < P && panel * P + lane < rows; lane++) {
            int r = panel * P + lane;
            long from = r * q4.rowBytes;
            for (int sb = 0; sb < cols; sb += SUPER, from += blockBytes) {
                long gs = groupSuper(panel, sb / SUPER);
                short d = q4.data.get(ValueLayout.JAVA_SHORT_UNALIGNED, from), dmin = q4.data.get(ValueLayout.JAVA_SHORT_UNALIGNED, from + 2);
                checkFinite(Float.float16ToFloat(d), r, sb);
                checkFinite(Float.float16ToFloat(dmin), "min scale (dmin)", r, sb);
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED, f16At(gs, 0, p, lane), d);
                data.set(ValueLayout.JAVA_SHORT_UNALIGNED, f16At(gs, 1, p, lane), dmin);
                for (int j = 0; j < 8; j++) {
                    long gb = subBlock(gs, j);
                    data.set(ValueLayout.JAVA_BYTE, gb + 4L * lane + p, (byte) q4.scaleK4(from + 4, j));
                    data.set(ValueLayout.JAVA_BYTE, gb + 4L * P + 4L * lane + p, (byte) q4.minK4(from + 4, j));
                    for (int c = 0; c < 4; c++) {
                        int packed = 0;
                        for (int i = 0; i < 8; i++) {
                            int w = 32 * j + PackedQ4_0.column(c, i); // ggml: 64-weight chunks, low nibbles first
                            int b = q4.data.get(ValueLayout.JAVA_BYTE, from + 16 + 32 * (w / 64) + w % 32) & 0xFF;
                            int q = w % 64 < 32 ? b & 15 : b >> 4;
                            packed |= q << (4 * i);
                        }
                        data.set(ValueLayout.JAVA_INT_UNALIGNED, chunkAt(gb, p, lane, c), packed);
                    }
                }
            }
        }
    }
}
