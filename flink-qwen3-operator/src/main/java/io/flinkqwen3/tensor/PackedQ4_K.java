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
 * Q4_K in panels, kept at 4.625 bits a weight (148 bytes per row per 256 columns; ggml: 144). A weight of 32-column sub-block j of a
 * 256-column super-block is d * sc_j * q - dmin * m_j (q 0..15; sc_j, m_j 6-bit; d, dmin f16), so a
 * sub-block's dot product with x is d * sc_j * sum(q * x) - dmin * m_j * sum(x). Per super-block
 * and row the panels keep d and dmin as f16, per sub-block and row sc_j and m_j as bytes, and the
 * quants in {@link PackedQ4_0}'s chunk layout (8 per int lane), nibble 7 stored as q xor 8, decoded with one
 * AND and a convert against the input prescaled by 2^-4i for nibble i ({@link #prescale}). Each input
 * row carries per sub-block A = 8 * (sum of x over its columns k % 8 == 7), which gives back the 8
 * that nibble 7's encoding took off, and B = sum of x, for the mins: the sub-block adds
 * d * sc_j * (t + A) - dmin * m_j * B to a row, t being the kernel's sum. Lossless: ggml's scales,
 * mins and quants as they are, and every product of an f16 and a 6-bit integer is exact in fp32.
 *
 * <p>Why not int8 panels, as Q6_K: they read 34 bytes per 32 weights instead of 18.5, and decoding
 * one sequence streams every weight from DRAM per token. The price is a heavier per-sub-block
 * epilogue (the scales, mins and their corrections) where several rows share the decoded weights.
 * Measured on Qwen3-0.6B Q4_K_M (its other matrices Q6_K), AMD EPYC Zen 4, 2 threads, {@code qwen3
 * bench --prompt 16 --gen 64}, builds alternating, against int8 panels: one sequence 46.5 and 57.8
 * -> 61.1 and 61.1 tok/s, 16 sequences 131.9 and 130.2 -> 124.2 and 122.2; side by side with
 * llama.cpp in README "Performance".
 */
final class PackedQ4_K extends PackedMatrix {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final int SUPER = 256;
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
     * Each row as the kernels read it ({@link #streamStride} floats): x[k] * 2^-4(k % 8) for every
     * column k, then per 32-column sub-block A and B (see the class comment), summed in column order
     * so that a row gets the same corrections in every call.
     */
    @Override
    float[] streamInput(float[] x, int batch) {
        int stride = streamStride();
        float[] prepared = new float[batch * stride];
        for (int b = 0; b < batch; b++) {
            int from = b * cols, to = b * stride;
            prescale(x, from, prepared, to, cols);
            for (int kb = 0; kb < cols; kb += 32) {
                float last = 0, all = 0;
                for (int k = kb; k < kb + 32; k++) {
                    last += k % 8 == 7 ? x[from + k] : 0;
                    all += x[from + k];
                }
                prepared[to + cols + kb / 16] = 8 * last;
                prepared[to + cols + kb / 16 + 1] = all;
            }
        }
        return prepared;
    }

    @Override
    int streamStride() {
        return cols + cols / 16;
    }

    /** 2^-4i for column i of each 8: the prescaling of the inputs, repeated over a vector. */
    private static final float[] PRESCALE = new float[Math.max(8, F.length())];

    static {
        for (int i = 0; i < PRESCALE.length; i++) {
            PRESCALE[i] = Math.scalb(1f, -4 * (i % 8));
        }
    }

    /** out[to + k] = x[from + k] * 2^-4(k % 8) for k in [0, cols): the nibble kernels' prescaled input. */
    private static void prescale(float[] x, int from, float[] out, int to, int cols) {
        int k = 0;
        for (; k < F.loopBound(cols); k += F.length()) { // lanes are a power of two: k % 8 is where the pattern starts
            FloatVector.fromArray(F, x, from + k).mul(FloatVector.fromArray(F, PRESCALE, k % 8)).intoArray(out, to + k);
        }
        for (; k < cols; k++) {
            out[to + k] = x[from + k] * PRESCALE[k % 8];
        }
    }

    /*
     * A group's four panels share each super-block: [d of panels 0|1][d 2|3][dmin 0|1][dmin 2|3] (int
     * lane l of a pair: row l's f16 of the even panel in the low half, of the odd panel in the high
     * half), then 8 sub-blocks of [scales][mins][chunk 0 of panels 0..3][chunk 1 ...]: byte p of int
     * lane l of the scales (mins) is row l's sc_j (m_j) of panel p; int lane l of chunk c of a panel
     * holds row l's quants of columns 8c .. 8c+7 of the sub-block, one per nibble. The kernels read
     * ascending addresses.
     *
     * The kernels write their Vector API calls out, as PackedQ4_0's do (C2 inlining; see there), and
     * decode, per 16 lanes:
     * - nibble i of a chunk v:  v & (0xF << 4i), then int -> float: q * 2^4i (i < 7) or (q - 8) * 2^28
     *   (i = 7, the sign bit), exact; times the input prescaled by 2^-4i;
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
        for (int sb = 0; sb < cols; sb += SUPER, gs += step) {
            var d01 = IntVector.fromMemorySegment(I, data, gs, LE);
            var d23 = IntVector.fromMemorySegment(I, data, gs + 4 * P, LE);
            var n01 = IntVector.fromMemorySegment(I, data, gs + 8 * P, LE);
            var n23 = IntVector.fromMemorySegment(I, data, gs + 12 * P, LE);
            var d0 = d01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f);
            var d1 = d01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p104f);
            var d2 = d23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p96f);
            var d3 = d23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p88f);
            var m0 = n01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p112f);
            var m1 = n01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p104f);
            var m2 = n23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p96f);
            var m3 = n23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p88f);
            for (int j = 0; j < 8; j++) {
                long gb = subBlock(gs, j);
                int kb = sb + 32 * j;
                // sub-block sums without the scale, scaled once per sub-block
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
                    for (int i = 0; i < 8; i++) {
                        var xv = FloatVector.broadcast(F, x[xOff + kb + 8 * c + i]);
                        t0 = ((FloatVector) q0.lanewise(AND, 0xF << 4 * i).convert(I2F, 0)).fma(xv, t0);
                        t1 = ((FloatVector) q1.lanewise(AND, 0xF << 4 * i).convert(I2F, 0)).fma(xv, t1);
                        t2 = ((FloatVector) q2.lanewise(AND, 0xF << 4 * i).convert(I2F, 0)).fma(xv, t2);
                        t3 = ((FloatVector) q3.lanewise(AND, 0xF << 4 * i).convert(I2F, 0)).fma(xv, t3);
                    }
                }
                var sc = IntVector.fromMemorySegment(I, data, gb, LE);
                var mn = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
                var last = FloatVector.broadcast(F, x[xOff + cols + kb / 16]);
                var all = FloatVector.broadcast(F, x[xOff + cols + kb / 16 + 1]);
                a0 = t0.add(last).fma(((FloatVector) sc.lanewise(AND, 63).convert(I2F, 0)).mul(d0),
                        ((FloatVector) mn.lanewise(AND, 63).convert(I2F, 0)).mul(m0).fma(all, a0));
                a1 = t1.add(last).fma(((FloatVector) sc.lanewise(AND, 63 << 8).convert(I2F, 0)).mul(d1),
                        ((FloatVector) mn.lanewise(AND, 63 << 8).convert(I2F, 0)).mul(m1).fma(all, a1));
                a2 = t2.add(last).fma(((FloatVector) sc.lanewise(AND, 63 << 16).convert(I2F, 0)).mul(d2),
                        ((FloatVector) mn.lanewise(AND, 63 << 16).convert(I2F, 0)).mul(m2).fma(all, a2));
                a3 = t3.add(last).fma(((FloatVector) sc.lanewise(AND, 63 << 24).convert(I2F, 0)).mul(d3),
                        ((FloatVector) mn.lanewise(AND, 63 << 24).convert(I2F, 0)).mul(m3).fma(all, a3));
            }
        }
        a0.intoArray(out, 0);
        a1.intoArray(out, P);
        a2.intoArray(out, 2 * P);
        a3.intoArray(out, 3 * P);
    }

    @Override
    void matvec2(int group, float[] x, int x0, int x1, float[] out) {
        java.util.Arrays.fill(out, 0, 2 * GROUP, 0f);
        long gs = groupSuper(4 * group, 0), step = 4L * SUPER_BYTES;
        for (int sb = 0; sb < cols; sb += SUPER, gs += step) {
            for (int j = 0; j < 8; j++) {
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
                for (int c = 0; c < 4; c++) {
                    long at = gb + 4L * P * (2 + 4 * c);
                    var q0 = IntVector.fromMemorySegment(I, data, at, LE);
                    var q1 = IntVector.fromMemorySegment(I, data, at + 4 * P, LE);
                    var q2 = IntVector.fromMemorySegment(I, data, at + 8 * P, LE);
                    var q3 = IntVector.fromMemorySegment(I, data, at + 12 * P, LE);
                    for (int i = 0; i < 8; i++) {
                        int k = kb + 8 * c + i;
                        var v0 = FloatVector.broadcast(F, x[x0 + k]);
                        var v1 = FloatVector.broadcast(F, x[x1 + k]);
                        var w = (FloatVector) q0.lanewise(AND, 0xF << 4 * i).convert(I2F, 0);
                        t00 = w.fma(v0, t00);
                        t10 = w.fma(v1, t10);
                        w = (FloatVector) q1.lanewise(AND, 0xF << 4 * i).convert(I2F, 0);
                        t01 = w.fma(v0, t01);
                        t11 = w.fma(v1, t11);
                        w = (FloatVector) q2.lanewise(AND, 0xF << 4 * i).convert(I2F, 0);
                        t02 = w.fma(v0, t02);
                        t12 = w.fma(v1, t12);
                        w = (FloatVector) q3.lanewise(AND, 0xF << 4 * i).convert(I2F, 0);
                        t03 = w.fma(v0, t03);
                        t13 = w.fma(v1, t13);
                    }
                }
                var d01 = IntVector.fromMemorySegment(I, data, gs, LE);
                var d23 = IntVector.fromMemorySegment(I, data, gs + 4 * P, LE);
                var n01 = IntVector.fromMemorySegment(I, data, gs + 8 * P, LE);
                var n23 = IntVector.fromMemorySegment(I, data, gs + 12 * P, LE);
                var sc = IntVector.fromMemorySegment(I, data, gb, LE);
                var mn = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
                var s0 = ((FloatVector) sc.lanewise(AND, 63).convert(I2F, 0))
                        .mul(d01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f));
                var s1 = ((FloatVector) sc.lanewise(AND, 63 << 8).convert(I2F, 0))
                        .mul(d01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p104f));
                var s2 = ((FloatVector) sc.lanewise(AND, 63 << 16).convert(I2F, 0))
                        .mul(d23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p96f));
                var s3 = ((FloatVector) sc.lanewise(AND, 63 << 24).convert(I2F, 0))
                        .mul(d23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p88f));
                var m0 = ((FloatVector) mn.lanewise(AND, 63).convert(I2F, 0))
                        .mul(n01.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p112f));
                var m1 = ((FloatVector) mn.lanewise(AND, 63 << 8).convert(I2F, 0))
                        .mul(n01.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p104f));
                var m2 = ((FloatVector) mn.lanewise(AND, 63 << 16).convert(I2F, 0))
                        .mul(n23.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p96f));
                var m3 = ((FloatVector) mn.lanewise(AND, 63 << 24).convert(I2F, 0))
                        .mul(n23.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p88f));
                var l0 = FloatVector.broadcast(F, x[x0 + cols + kb / 16]);
                var l1 = FloatVector.broadcast(F, x[x1 + cols + kb / 16]);
                var b0 = FloatVector.broadcast(F, x[x0 + cols + kb / 16 + 1]);
                var b1 = FloatVector.broadcast(F, x[x1 + cols + kb / 16 + 1]);
                t00.add(l0).fma(s0, m0.fma(b0, FloatVector.fromArray(F, out, 0))).intoArray(out, 0);
                t01.add(l0).fma(s1, m1.fma(b0, FloatVector.fromArray(F, out, P))).intoArray(out, P);
                t02.add(l0).fma(s2, m2.fma(b0, FloatVector.fromArray(F, out, 2 * P))).intoArray(out, 2 * P);
                t03.add(l0).fma(s3, m3.fma(b0, FloatVector.fromArray(F, out, 3 * P))).intoArray(out, 3 * P);
                t10.add(l1).fma(s0, m0.fma(b1, FloatVector.fromArray(F, out, GROUP))).intoArray(out, GROUP);
                t11.add(l1).fma(s1, m1.fma(b1, FloatVector.fromArray(F, out, GROUP + P))).intoArray(out, GROUP + P);
                t12.add(l1).fma(s2, m2.fma(b1, FloatVector.fromArray(F, out, GROUP + 2 * P))).intoArray(out, GROUP + 2 * P);
                t13.add(l1).fma(s3, m3.fma(b1, FloatVector.fromArray(F, out, GROUP + 3 * P))).intoArray(out, GROUP + 3 * P);
            }
        }
    }

    @Override
    void matvec4(int group, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        java.util.Arrays.fill(out, 0, 4 * GROUP, 0f);
        long gs = groupSuper(4 * group, 0), step = 4L * SUPER_BYTES;
        for (int sb = 0; sb < cols; sb += SUPER, gs += step) {
            for (int j = 0; j < 8; j++) {
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
                        var v0 = FloatVector.broadcast(F, x[x0 + k]);
                        var v1 = FloatVector.broadcast(F, x[x1 + k]);
                        var v2 = FloatVector.broadcast(F, x[x2 + k]);
                        var v3 = FloatVector.broadcast(F, x[x3 + k]);
                        var w = (FloatVector) q0.lanewise(AND, 0xF << 4 * i).convert(I2F, 0);
                        t00 = w.fma(v0, t00);
                        t10 = w.fma(v1, t10);
                        t20 = w.fma(v2, t20);
                        t30 = w.fma(v3, t30);
                        w = (FloatVector) q1.lanewise(AND, 0xF << 4 * i).convert(I2F, 0);
                        t01 = w.fma(v0, t01);
                        t11 = w.fma(v1, t11);
                        t21 = w.fma(v2, t21);
                        t31 = w.fma(v3, t31);
                        w = (FloatVector) q2.lanewise(AND, 0xF << 4 * i).convert(I2F, 0);
                        t02 = w.fma(v0, t02);
                        t12 = w.fma(v1, t12);
                        t22 = w.fma(v2, t22);
                        t32 = w.fma(v3, t32);
                        w = (FloatVector) q3.lanewise(AND, 0xF << 4 * i).convert(I2F, 0);
                        t03 = w.fma(v0, t03);
                        t13 = w.fma(v1, t13);
                        t23 = w.fma(v2, t23);
                        t33 = w.fma(v3, t33);
                    }
                }
                int c0 = cols + kb / 16;
                var l0 = FloatVector.broadcast(F, x[x0 + c0]);
                var l1 = FloatVector.broadcast(F, x[x1 + c0]);
                var l2 = FloatVector.broadcast(F, x[x2 + c0]);
                var l3 = FloatVector.broadcast(F, x[x3 + c0]);
                var b0 = FloatVector.broadcast(F, x[x0 + c0 + 1]);
                var b1 = FloatVector.broadcast(F, x[x1 + c0 + 1]);
                var b2 = FloatVector.broadcast(F, x[x2 + c0 + 1]);
                var b3 = FloatVector.broadcast(F, x[x3 + c0 + 1]);
                var sc = IntVector.fromMemorySegment(I, data, gb, LE);
                var mn = IntVector.fromMemorySegment(I, data, gb + 4 * P, LE);
                // panel by panel, so that few scales are live at once
                var d = IntVector.fromMemorySegment(I, data, gs, LE);
                var n = IntVector.fromMemorySegment(I, data, gs + 8 * P, LE);
                var s = ((FloatVector) sc.lanewise(AND, 63).convert(I2F, 0))
                        .mul(d.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p112f));
                var m = ((FloatVector) mn.lanewise(AND, 63).convert(I2F, 0))
                        .mul(n.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p112f));
                t00.add(l0).fma(s, m.fma(b0, FloatVector.fromArray(F, out, 0))).intoArray(out, 0);
                t10.add(l1).fma(s, m.fma(b1, FloatVector.fromArray(F, out, GROUP))).intoArray(out, GROUP);
                t20.add(l2).fma(s, m.fma(b2, FloatVector.fromArray(F, out, 2 * GROUP))).intoArray(out, 2 * GROUP);
                t30.add(l3).fma(s, m.fma(b3, FloatVector.fromArray(F, out, 3 * GROUP))).intoArray(out, 3 * GROUP);
                s = ((FloatVector) sc.lanewise(AND, 63 << 8).convert(I2F, 0))
                        .mul(d.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p104f));
                m = ((FloatVector) mn.lanewise(AND, 63 << 8).convert(I2F, 0))
                        .mul(n.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p104f));
                t01.add(l0).fma(s, m.fma(b0, FloatVector.fromArray(F, out, P))).intoArray(out, P);
                t11.add(l1).fma(s, m.fma(b1, FloatVector.fromArray(F, out, GROUP + P))).intoArray(out, GROUP + P);
                t21.add(l2).fma(s, m.fma(b2, FloatVector.fromArray(F, out, 2 * GROUP + P))).intoArray(out, 2 * GROUP + P);
                t31.add(l3).fma(s, m.fma(b3, FloatVector.fromArray(F, out, 3 * GROUP + P))).intoArray(out, 3 * GROUP + P);
                d = IntVector.fromMemorySegment(I, data, gs + 4 * P, LE);
                n = IntVector.fromMemorySegment(I, data, gs + 12 * P, LE);
                s = ((FloatVector) sc.lanewise(AND, 63 << 16).convert(I2F, 0))
                        .mul(d.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p96f));
                m = ((FloatVector) mn.lanewise(AND, 63 << 16).convert(I2F, 0))
                        .mul(n.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p96f));
                t02.add(l0).fma(s, m.fma(b0, FloatVector.fromArray(F, out, 2 * P))).intoArray(out, 2 * P);
                t12.add(l1).fma(s, m.fma(b1, FloatVector.fromArray(F, out, GROUP + 2 * P))).intoArray(out, GROUP + 2 * P);
                t22.add(l2).fma(s, m.fma(b2, FloatVector.fromArray(F, out, 2 * GROUP + 2 * P))).intoArray(out, 2 * GROUP + 2 * P);
                t32.add(l3).fma(s, m.fma(b3, FloatVector.fromArray(F, out, 3 * GROUP + 2 * P))).intoArray(out, 3 * GROUP + 2 * P);
                s = ((FloatVector) sc.lanewise(AND, 63 << 24).convert(I2F, 0))
                        .mul(d.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(0x1p88f));
                m = ((FloatVector) mn.lanewise(AND, 63 << 24).convert(I2F, 0))
                        .mul(n.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats().mul(-0x1p88f));
                t03.add(l0).fma(s, m.fma(b0, FloatVector.fromArray(F, out, 3 * P))).intoArray(out, 3 * P);
                t13.add(l1).fma(s, m.fma(b1, FloatVector.fromArray(F, out, GROUP + 3 * P))).intoArray(out, GROUP + 3 * P);
                t23.add(l2).fma(s, m.fma(b2, FloatVector.fromArray(F, out, 2 * GROUP + 3 * P))).intoArray(out, 2 * GROUP + 3 * P);
                t33.add(l3).fma(s, m.fma(b3, FloatVector.fromArray(F, out, 3 * GROUP + 3 * P))).intoArray(out, 3 * GROUP + 3 * P);
            }
        }
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
            // nibble 7 holds q - 8; its weights round twice ((q - 8) * s + (8s - dmin * m)), within an ulp
            var last = s.fma(FloatVector.broadcast(F, 8f), minus);
            for (int c = 0; c < 4; c++) {
                var q = IntVector.fromMemorySegment(I, data, gb + 4L * P * (2 + 4 * c + p), LE);
                for (int i = 0; i < 8; i++) { // q * 2^4i * (d * sc * 2^-4i) - dmin * m, or for i = 7 (q - 8) * 2^28 * (d * sc * 2^-28) + 8 * d * sc - dmin * m
                    ((FloatVector) q.lanewise(AND, 0xF << 4 * i).convert(I2F, 0)).fma(s.mul(Math.scalb(1f, -4 * i)), i == 7 ? last : minus)
                            .intoArray(buf, off + (kb - k0 + 8 * c + i) * stride);
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
        int packed = data.get(ValueLayout.JAVA_INT_UNALIGNED, chunkAt(gb, p, lane, i / 8));
        int q = (packed >>> 4 * (i % 8) & 15) ^ (i % 8 == 7 ? 8 : 0);
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
                            int w = 32 * j + 8 * c + i; // ggml: 64-weight chunks, low nibbles first
                            int b = q4.data.get(ValueLayout.JAVA_BYTE, from + 16 + 32 * (w / 64) + w % 32) & 0xFF;
                            int q = w % 64 < 32 ? b & 15 : b >> 4;
                            packed |= (i == 7 ? q ^ 8 : q) << (4 * i); // nibble 7 signed: see the class comment
                        }
                        data.set(ValueLayout.JAVA_INT_UNALIGNED, chunkAt(gb, p, lane, c), packed);
                    }
                }
            }
        }
    }
}
