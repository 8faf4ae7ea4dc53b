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
 * bfloat16 weights: the top 16 bits of an fp32. A 32-bit load holds two neighbours; shifting the
 * low one up and masking the high one widens both exactly, with no lane shuffles. So the kernels
 * see the weights of a 2L-column chunk as [even columns | odd columns], and {@link #prepare}
 * rearranges the input the same way once per matrix multiply.
 */
public final class BF16Matrix extends Matrix {
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final int L = F.length(), CHUNK = 2 * F.length();
    private final int chunked;

    BF16Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
        this.chunked = cols / CHUNK * CHUNK;
    }

    @Override
    public DType type() {
        return DType.BF16;
    }

    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    private float at(long base, int c) {
        return toFloat(data.get(ValueLayout.JAVA_SHORT_UNALIGNED, base + 2L * c));
    }

    /** Per input row, each 2L chunk becomes [x0, x2, ..., x(2L-2), x1, x3, ...]; the tail stays in place. */
    @Override
    protected float[] prepare(float[] in, int batch) {
        float[] x = new float[batch * cols];
        for (int b = 0; b < batch; b++) {
            int row = b * cols;
            for (int c = 0; c < chunked; c += CHUNK) {
                for (int i = 0; i < L; i++) {
                    x[row + c + i] = in[row + c + 2 * i];
                    x[row + c + L + i] = in[row + c + 2 * i + 1];
                }
            }
            System.arraycopy(in, row + chunked, x, row + chunked, cols - chunked);
        }
        return x;
    }

    private IntVector pairs(long base, int c) {
        return IntVector.fromMemorySegment(I, data, base + 2L * c, ByteOrder.LITTLE_ENDIAN);
    }

    private static FloatVector even(IntVector p) {
        return p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    private static FloatVector odd(IntVector p) {
        return p.and(0xFFFF0000).reinterpretAsFloats();
    }

    @Override
    protected float dot(int row, float[] x, int xOff) {
        long base = (long) row * cols * 2;
        var accEven = FloatVector.zero(F);
        var accOdd = FloatVector.zero(F);
        for (int c = 0; c < chunked; c += CHUNK) {
            var p = pairs(base, c);
            accEven = even(p).fma(FloatVector.fromArray(F, x, xOff + c), accEven);
            accOdd = odd(p).fma(FloatVector.fromArray(F, x, xOff + c + L), accOdd);
        }
        float sum = accEven.add(accOdd).reduceLanes(VectorOperators.ADD);
        for (int c = chunked; c < cols; c++) {
            sum += at(base, c) * x[xOff + c];
        }
        return sum;
    }

    @Override
    protected void dot4(int row, float[] x, int a, int b, int c4, int d, float[] out, int outIdx, int outStride) {
        long base = (long) row * cols * 2;
        var accA = FloatVector.zero(F);
        var accB = FloatVector.zero(F);
        var accC = FloatVector.zero(F);
        var accD = FloatVector.zero(F);
        for (int c = 0; c < chunked; c += CHUNK) {
            var p = pairs(base, c);
            var e = even(p);
            var o = odd(p);
            accA = o.fma(FloatVector.fromArray(F, x, a + c + L), e.fma(FloatVector.fromArray(F, x, a + c), accA));
            accB = o.fma(FloatVector.fromArray(F, x, b + c + L), e.fma(FloatVector.fromArray(F, x, b + c), accB));
            accC = o.fma(FloatVector.fromArray(F, x, c4 + c + L), e.fma(FloatVector.fromArray(F, x, c4 + c), accC));
            accD = o.fma(FloatVector.fromArray(F, x, d + c + L), e.fma(FloatVector.fromArray(F, x, d + c), accD));
        }
        float sa = accA.reduceLanes(VectorOperators.ADD), sb = accB.reduceLanes(VectorOperators.ADD);
        float sc = accC.reduceLanes(VectorOperators.ADD), sd = accD.reduceLanes(VectorOperators.ADD);
        for (int c = chunked; c < cols; c++) {
            float w = at(base, c);
            sa += w * x[a + c];
            sb += w * x[b + c];
            sc += w * x[c4 + c];
            sd += w * x[d + c];
        }
        store4(out, outIdx, outStride, sa, sb, sc, sd);
    }

    /** The row widened to floats in the [even | odd] chunk order of {@link #prepare}: no shuffles. */
    @Override
    protected void unpackRow(int row, float[] out, int outOff) {
        long base = (long) row * cols * 2;
        for (int c = 0; c < chunked; c += CHUNK) {
            var p = pairs(base, c);
            even(p).intoArray(out, outOff + c);
            odd(p).intoArray(out, outOff + c + L);
        }
        for (int c = chunked; c < cols; c++) {
            out[outOff + c] = at(base, c);
        }
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        long base = (long) row * cols * 2;
        for (int c = 0; c < cols; c++) {
            out[outOff + c] = at(base, c);
        }
    }
}
