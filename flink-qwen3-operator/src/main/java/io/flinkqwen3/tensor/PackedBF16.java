package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;
import static jdk.incubator.vector.VectorOperators.AND;
import static jdk.incubator.vector.VectorOperators.LSHL;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * bfloat16 in the panels of {@link PackedHalves} (column pairs, a pair per int lane). bf16 is the
 * top half of an fp32, so a shift (even column) or a mask (odd column) widens a whole vector
 * exactly: one integer operation per P weights, no block scales. The kernels for one, two and four
 * input rows add column 2k, then 2k+1, into one accumulator per row and panel, so a row's result
 * is bit for bit the same in each.
 *
 * <p>Every batch streams through them, prefill too: with one integer operation per P weights the
 * 4-row passes run at the FMA peak, above the dequantize-and-tile path (AMD EPYC Zen 4, 4096x2048,
 * 2 threads, G weight-rows/s: 64 rows 112 against 89, 256 rows 112 against 100, 512 rows 113
 * against 99).
 */
final class PackedBF16 extends PackedHalves {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    PackedBF16(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, 0x7F80); // every batch streams: see the class comment
    }

    @Override
    public DType type() {
        return DType.BF16;
    }

    @Override
    void matvec(int group, float[] x, int xOff, float[] out) {
        long at = offset(4 * group, 0, PAIR_BYTES), step = 4L * PAIR_BYTES;
        var a0 = FloatVector.zero(F);
        var a1 = FloatVector.zero(F);
        var a2 = FloatVector.zero(F);
        var a3 = FloatVector.zero(F);
        for (int k = 0; k < cols; k += 2, at += step) {
            var xe = FloatVector.broadcast(F, x[xOff + k]);
            var xo = FloatVector.broadcast(F, x[xOff + k + 1]);
            var p = IntVector.fromMemorySegment(I, data, at, LE);
            var w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a0 = w.fma(xe, a0);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a0 = w.fma(xo, a0);
            p = IntVector.fromMemorySegment(I, data, at + PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a1 = w.fma(xe, a1);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a1 = w.fma(xo, a1);
            p = IntVector.fromMemorySegment(I, data, at + 2 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a2 = w.fma(xe, a2);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a2 = w.fma(xo, a2);
            p = IntVector.fromMemorySegment(I, data, at + 3 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a3 = w.fma(xe, a3);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a3 = w.fma(xo, a3);
        }
        a0.intoArray(out, 0);
        a1.intoArray(out, P);
        a2.intoArray(out, 2 * P);
        a3.intoArray(out, 3 * P);
    }

    @Override
    void matvec2(int group, float[] x, int x0, int x1, float[] out) {
        long at = offset(4 * group, 0, PAIR_BYTES), step = 4L * PAIR_BYTES;
        var a00 = FloatVector.zero(F); // a<row><panel>
        var a01 = FloatVector.zero(F);
        var a02 = FloatVector.zero(F);
        var a03 = FloatVector.zero(F);
        var a10 = FloatVector.zero(F);
        var a11 = FloatVector.zero(F);
        var a12 = FloatVector.zero(F);
        var a13 = FloatVector.zero(F);
        for (int k = 0; k < cols; k += 2, at += step) {
            var e0 = FloatVector.broadcast(F, x[x0 + k]);
            var o0 = FloatVector.broadcast(F, x[x0 + k + 1]);
            var e1 = FloatVector.broadcast(F, x[x1 + k]);
            var o1 = FloatVector.broadcast(F, x[x1 + k + 1]);
            var p = IntVector.fromMemorySegment(I, data, at, LE);
            var w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a00 = w.fma(e0, a00);
            a10 = w.fma(e1, a10);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a00 = w.fma(o0, a00);
            a10 = w.fma(o1, a10);
            p = IntVector.fromMemorySegment(I, data, at + PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a01 = w.fma(e0, a01);
            a11 = w.fma(e1, a11);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a01 = w.fma(o0, a01);
            a11 = w.fma(o1, a11);
            p = IntVector.fromMemorySegment(I, data, at + 2 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a02 = w.fma(e0, a02);
            a12 = w.fma(e1, a12);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a02 = w.fma(o0, a02);
            a12 = w.fma(o1, a12);
            p = IntVector.fromMemorySegment(I, data, at + 3 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a03 = w.fma(e0, a03);
            a13 = w.fma(e1, a13);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a03 = w.fma(o0, a03);
            a13 = w.fma(o1, a13);
        }
        a00.intoArray(out, 0);
        a01.intoArray(out, P);
        a02.intoArray(out, 2 * P);
        a03.intoArray(out, 3 * P);
        a10.intoArray(out, GROUP);
        a11.intoArray(out, GROUP + P);
        a12.intoArray(out, GROUP + 2 * P);
        a13.intoArray(out, GROUP + 3 * P);
    }

    @Override
    void matvec4(int group, float[] x, int x0, int x1, int x2, int x3, float[] out) {
        long at = offset(4 * group, 0, PAIR_BYTES), step = 4L * PAIR_BYTES;
        var a00 = FloatVector.zero(F); // a<row><panel>
        var a01 = FloatVector.zero(F);
        var a02 = FloatVector.zero(F);
        var a03 = FloatVector.zero(F);
        var a10 = FloatVector.zero(F);
        var a11 = FloatVector.zero(F);
        var a12 = FloatVector.zero(F);
        var a13 = FloatVector.zero(F);
        var a20 = FloatVector.zero(F);
        var a21 = FloatVector.zero(F);
        var a22 = FloatVector.zero(F);
        var a23 = FloatVector.zero(F);
        var a30 = FloatVector.zero(F);
        var a31 = FloatVector.zero(F);
        var a32 = FloatVector.zero(F);
        var a33 = FloatVector.zero(F);
        for (int k = 0; k < cols; k += 2, at += step) {
            var e0 = FloatVector.broadcast(F, x[x0 + k]);
            var o0 = FloatVector.broadcast(F, x[x0 + k + 1]);
            var e1 = FloatVector.broadcast(F, x[x1 + k]);
            var o1 = FloatVector.broadcast(F, x[x1 + k + 1]);
            var e2 = FloatVector.broadcast(F, x[x2 + k]);
            var o2 = FloatVector.broadcast(F, x[x2 + k + 1]);
            var e3 = FloatVector.broadcast(F, x[x3 + k]);
            var o3 = FloatVector.broadcast(F, x[x3 + k + 1]);
            var p = IntVector.fromMemorySegment(I, data, at, LE);
            var w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a00 = w.fma(e0, a00);
            a10 = w.fma(e1, a10);
            a20 = w.fma(e2, a20);
            a30 = w.fma(e3, a30);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a00 = w.fma(o0, a00);
            a10 = w.fma(o1, a10);
            a20 = w.fma(o2, a20);
            a30 = w.fma(o3, a30);
            p = IntVector.fromMemorySegment(I, data, at + PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a01 = w.fma(e0, a01);
            a11 = w.fma(e1, a11);
            a21 = w.fma(e2, a21);
            a31 = w.fma(e3, a31);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a01 = w.fma(o0, a01);
            a11 = w.fma(o1, a11);
            a21 = w.fma(o2, a21);
            a31 = w.fma(o3, a31);
            p = IntVector.fromMemorySegment(I, data, at + 2 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a02 = w.fma(e0, a02);
            a12 = w.fma(e1, a12);
            a22 = w.fma(e2, a22);
            a32 = w.fma(e3, a32);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a02 = w.fma(o0, a02);
            a12 = w.fma(o1, a12);
            a22 = w.fma(o2, a22);
            a32 = w.fma(o3, a32);
            p = IntVector.fromMemorySegment(I, data, at + 3 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).reinterpretAsFloats(); // column k
            a03 = w.fma(e0, a03);
            a13 = w.fma(e1, a13);
            a23 = w.fma(e2, a23);
            a33 = w.fma(e3, a33);
            w = p.lanewise(AND, 0xFFFF0000).reinterpretAsFloats(); // column k + 1
            a03 = w.fma(o0, a03);
            a13 = w.fma(o1, a13);
            a23 = w.fma(o2, a23);
            a33 = w.fma(o3, a33);
        }
        a00.intoArray(out, 0);
        a01.intoArray(out, P);
        a02.intoArray(out, 2 * P);
        a03.intoArray(out, 3 * P);
        a10.intoArray(out, GROUP);
        a11.intoArray(out, GROUP + P);
        a12.intoArray(out, GROUP + 2 * P);
        a13.intoArray(out, GROUP + 3 * P);
        a20.intoArray(out, 2 * GROUP);
        a21.intoArray(out, 2 * GROUP + P);
        a22.intoArray(out, 2 * GROUP + 2 * P);
        a23.intoArray(out, 2 * GROUP + 3 * P);
        a30.intoArray(out, 3 * GROUP);
        a31.intoArray(out, 3 * GROUP + P);
        a32.intoArray(out, 3 * GROUP + 2 * P);
        a33.intoArray(out, 3 * GROUP + 3 * P);
    }

    @Override
    float toFloat(short bits) {
        return Float.intBitsToFloat(bits << 16);
    }
}
