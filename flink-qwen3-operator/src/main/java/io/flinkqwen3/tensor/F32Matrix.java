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

    @Override
    public DType type() {
        return DType.F32;
    }

    @Override
    public void rowTo(int row, float[] out, int outOff) {
        MemorySegment.copy(data, ValueLayout.JAVA_FLOAT_UNALIGNED, (long) row * cols * 4, out, outOff, cols);
    }
}
