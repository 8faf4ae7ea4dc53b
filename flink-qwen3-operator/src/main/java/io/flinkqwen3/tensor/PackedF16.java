package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;
import static jdk.incubator.vector.VectorOperators.AND;
import static jdk.incubator.vector.VectorOperators.ASHR;
import static jdk.incubator.vector.VectorOperators.LSHL;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * IEEE half precision (F16, llama.cpp's default GGUF type when converting from Hugging Face) in the
 * panels of {@link PackedHalves} (column pairs, a pair per int lane, 2 bytes per weight as in the
 * file; they used to be widened to fp32 panels at load: twice the memory and the bytes read per
 * token). The kernels decode a half with integer operations, as the f16 block scales of {@link
 * PackedQ4_0}: its sign, exponent and mantissa moved to fp32's positions and the rest masked off
 * ((v << 16) >> 3, or v >> 3, then & 0x8FFFE000, arithmetic shifts), which reads the weight times
 * 2^-112 exactly (f16 subnormals become fp32 subnormals); the sums are multiplied by 2^112 once per
 * row and panel at the end (while a running sum is below 2^-14 in true magnitude it is rounded to a
 * step of 2^-37, an fp32 subnormal's; the products are not rounded on their own, being fused).
 * The kernels for one, two and four input rows add column 2k, then 2k+1, into one accumulator per
 * row and panel, so a row's result is bit for bit the same in each. Measured on AMD EPYC Zen 4, 4096x2048, 2 threads, MatBench, against the
 * fp32 panels before (builds alternating): 1 row 1503-1599 -> 390-406 us, 4 rows 1809-1840 -> 341-409
 * us, 16 rows 2682-2690 -> 1268-1280 us.
 *
 * <p>Every batch streams through the 4-row kernels, prefill too, as BF16's does: two or three
 * integer operations per 16 weights, shared by four rows, cost less than dequantizing into the tiles.
 * MatBench 3072x1024, 2 threads, both alternating in one JVM: 48 rows 76.5-79.9 -> 108.8-109.0 G
 * weight-rows/s, 64 rows 82.8-84.0 -> 109.2-109.6, 128 rows 89.8-90.0 -> 109.7-109.9, 512 rows
 * 98.7-98.9 -> 110.6-110.9; Qwen3-0.6B F16 prefill of 512 tokens 181.8-186.1 -> 200.8-201.1 tok/s.
 */
final class PackedF16 extends PackedHalves {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    PackedF16(MemorySegment data, int rows, int cols) {
        super(data, rows, cols, 0x7C00); // every batch streams: see the class comment
    }

    @Override
    public DType type() {
        return DType.F16;
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
            var w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a0 = w.fma(xe, a0);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a0 = w.fma(xo, a0);
            p = IntVector.fromMemorySegment(I, data, at + PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a1 = w.fma(xe, a1);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a1 = w.fma(xo, a1);
            p = IntVector.fromMemorySegment(I, data, at + 2 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a2 = w.fma(xe, a2);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a2 = w.fma(xo, a2);
            p = IntVector.fromMemorySegment(I, data, at + 3 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a3 = w.fma(xe, a3);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a3 = w.fma(xo, a3);
        }
        a0.mul(0x1p112f).intoArray(out, 0);
        a1.mul(0x1p112f).intoArray(out, P);
        a2.mul(0x1p112f).intoArray(out, 2 * P);
        a3.mul(0x1p112f).intoArray(out, 3 * P);
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
            var w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a00 = w.fma(e0, a00);
            a10 = w.fma(e1, a10);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a00 = w.fma(o0, a00);
            a10 = w.fma(o1, a10);
            p = IntVector.fromMemorySegment(I, data, at + PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a01 = w.fma(e0, a01);
            a11 = w.fma(e1, a11);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a01 = w.fma(o0, a01);
            a11 = w.fma(o1, a11);
            p = IntVector.fromMemorySegment(I, data, at + 2 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a02 = w.fma(e0, a02);
            a12 = w.fma(e1, a12);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a02 = w.fma(o0, a02);
            a12 = w.fma(o1, a12);
            p = IntVector.fromMemorySegment(I, data, at + 3 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a03 = w.fma(e0, a03);
            a13 = w.fma(e1, a13);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a03 = w.fma(o0, a03);
            a13 = w.fma(o1, a13);
        }
        a00.mul(0x1p112f).intoArray(out, 0);
        a01.mul(0x1p112f).intoArray(out, P);
        a02.mul(0x1p112f).intoArray(out, 2 * P);
        a03.mul(0x1p112f).intoArray(out, 3 * P);
        a10.mul(0x1p112f).intoArray(out, GROUP);
        a11.mul(0x1p112f).intoArray(out, GROUP + P);
        a12.mul(0x1p112f).intoArray(out, GROUP + 2 * P);
        a13.mul(0x1p112f).intoArray(out, GROUP + 3 * P);
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
            var w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a00 = w.fma(e0, a00);
            a10 = w.fma(e1, a10);
            a20 = w.fma(e2, a20);
            a30 = w.fma(e3, a30);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a00 = w.fma(o0, a00);
            a10 = w.fma(o1, a10);
            a20 = w.fma(o2, a20);
            a30 = w.fma(o3, a30);
            p = IntVector.fromMemorySegment(I, data, at + PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a01 = w.fma(e0, a01);
            a11 = w.fma(e1, a11);
            a21 = w.fma(e2, a21);
            a31 = w.fma(e3, a31);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a01 = w.fma(o0, a01);
            a11 = w.fma(o1, a11);
            a21 = w.fma(o2, a21);
            a31 = w.fma(o3, a31);
            p = IntVector.fromMemorySegment(I, data, at + 2 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a02 = w.fma(e0, a02);
            a12 = w.fma(e1, a12);
            a22 = w.fma(e2, a22);
            a32 = w.fma(e3, a32);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a02 = w.fma(o0, a02);
            a12 = w.fma(o1, a12);
            a22 = w.fma(o2, a22);
            a32 = w.fma(o3, a32);
            p = IntVector.fromMemorySegment(I, data, at + 3 * PAIR_BYTES, LE);
            w = p.lanewise(LSHL, 16).lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k, times 2^-112
            a03 = w.fma(e0, a03);
            a13 = w.fma(e1, a13);
            a23 = w.fma(e2, a23);
            a33 = w.fma(e3, a33);
            w = p.lanewise(ASHR, 3).lanewise(AND, 0x8FFFE000).reinterpretAsFloats(); // column k + 1, times 2^-112
            a03 = w.fma(o0, a03);
            a13 = w.fma(o1, a13);
            a23 = w.fma(o2, a23);
            a33 = w.fma(o3, a33);
        }
        a00.mul(0x1p112f).intoArray(out, 0);
        a01.mul(0x1p112f).intoArray(out, P);
        a02.mul(0x1p112f).intoArray(out, 2 * P);
        a03.mul(0x1p112f).intoArray(out, 3 * P);
        a10.mul(0x1p112f).intoArray(out, GROUP);
        a11.mul(0x1p112f).intoArray(out, GROUP + P);
        a12.mul(0x1p112f).intoArray(out, GROUP + 2 * P);
        a13.mul(0x1p112f).intoArray(out, GROUP + 3 * P);
        a20.mul(0x1p112f).intoArray(out, 2 * GROUP);
        a21.mul(0x1p112f).intoArray(out, 2 * GROUP + P);
        a22.mul(0x1p112f).intoArray(out, 2 * GROUP + 2 * P);
        a23.mul(0x1p112f).intoArray(out, 2 * GROUP + 3 * P);
        a30.mul(0x1p112f).intoArray(out, 3 * GROUP);
        a31.mul(0x1p112f).intoArray(out, 3 * GROUP + P);
        a32.mul(0x1p112f).intoArray(out, 3 * GROUP + 2 * P);
        a33.mul(0x1p112f).intoArray(out, 3 * GROUP + 3 * P);
    }

    @Override
    float toFloat(short bits) {
        return Float.float16ToFloat(bits);
    }
}
