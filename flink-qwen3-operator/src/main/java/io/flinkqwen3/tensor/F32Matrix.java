package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/** Float32 weights. */
public final class F32Matrix extends Matrix {
    F32Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
    }

    /** Never: the rows are floats already. */
    @Override
    protected int unpackOnceFromBatch() {
        return Integer.MAX_VALUE;
    }

    @Override
    public DType type() {
        return DType.F32;
    }

    private FloatVector load(long base, int c) {
        return FloatVector.fromMemorySegment(F, data, base + 4L * c, ByteOrder.LITTLE_ENDIAN);
    }

    private float at(long base, int c) {
        return data.get(ValueLayout.JAVA_FLOAT_UNALIGNED, base + 4L * c);
    }

    @Override
    protected float dot(int row, float[] x, int xOff) {
        long base = (long) row * cols * 4;
        var acc0 = FloatVector.zero(F);
        var acc1 = FloatVector.zero(F);
        int c = 0;
        for (int upper = cols - cols % (2 * F.length()); c < upper; c += 2 * F.length()) {
            acc0 = load(base, c).fma(FloatVector.fromArray(F, x, xOff + c), acc0);
            acc1 = load(base, c + F.length()).fma(FloatVector.fromArray(F, x, xOff + c + F.length()), acc1);
        }
        float sum = acc0.add(acc1).reduceLanes(VectorOperators.ADD);
        for (; c < cols; c++) {
            sum += at(base, c) * x[xOff + c];
        }
        return sum;
    }

    @Override
    protected void dot4(int row, float[] x, int a, int b, int c4, int d, float[] out, int outIdx, int outStride) {
        long base = (long) row * cols * 4;
        var accA = FloatVector.zero(F);
        var accB = FloatVector.zero(F);
        var accC = FloatVector.zero(F);
        var accD = FloatVector.zero(F);
        int c = 0;
        for (int upper = F.loopBound(cols); c < upper; c += F.length()) {
            var w = load(base, c);
            accA = w.fma(FloatVector.fromArray(F, x, a + c), accA);
            accB = w.fma(FloatVector.fromArray(F, x, b + c), accB);
            accC = w.fma(FloatVector.fromArray(F, x, c4 + c), accC);
            accD = w.fma(FloatVector.fromArray(F, x, d + c), accD);
        }
        float sa = accA.reduceLanes(VectorOperators.ADD), sb = accB.reduceLanes(VectorOperators.ADD);
        float sc = accC.reduceLanes(VectorOperators.ADD), sd = accD.reduceLanes(VectorOperators.ADD);
        for (; c < cols; c++) {
            float w = at(base, c);
            sa += w * x[a + c];
            sb += w * x[b + c];
            sc += w * x[c4 + c];
            sd += w * x[d + c];
        }
        store4(out, outIdx, outStride, sa, sb, sc, sd);
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        MemorySegment.copy(data, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) row * cols * 4, out, outOff, cols);
    }
}
