package io.flinkqwen3.runtime;

import io.flinkqwen3.model.Checkpoint;
import io.flinkqwen3.model.ModelFormatException;
import io.flinkqwen3.model.Tensor;
import io.flinkqwen3.tensor.Matrix;
import io.flinkqwen3.tensor.PackedMatrix;
import io.flinkqwen3.tensor.Parallel;
import java.lang.foreign.Arena;
import java.util.concurrent.atomic.LongAdder;

/**
 * Looks tensors up by their transformers names, checks their shapes against what the config
 * implies, and packs the matrices for the kernels into {@code packed}; counts the weights bound
 * in {@code bound} (for the load's progress). A packed matrix's mapped pages leave the resident set.
 */
record WeightBinder(Checkpoint checkpoint, Parallel parallel, Arena packed, LongAdder bound) {
    /**
     * A [rows, cols] weight, repacked into the kernels' layout; {@code fields} names the config fields
     * that give its shape ("vocab_size x hidden_size"), for the error when the tensor does not fit.
     */
    Matrix matrix(String name, int rows, int cols, String fields) {
        Tensor t = checkpoint.tensor(name);
        if (t.shape().length != 2 || t.shape()[0] != rows || t.shape()[1] != cols) {
            throw new ModelFormatException(t.file() + ": tensor '" + name + "' has shape " + t.shapeString()
                    + ", expected [" + rows + ", " + cols + "] (" + fields + ")");
        }
        Matrix source = Matrix.of(t.type(), t.data(), rows, cols);
        Matrix matrix;
        try {
            matrix = PackedMatrix.pack(source, parallel, packed);
        } catch (PackedMatrix.DamagedWeightsException e) {
            throw t.damaged(e.getMessage(), e);
        } catch (RuntimeException e) { // Parallel wraps what a packing thread threw
            if (e.getCause() instanceof PackedMatrix.DamagedWeightsException damaged) {
                throw t.damaged(damaged.getMessage(), damaged);
            }
            throw e;
        }
        if (matrix != source && t.data().isMapped()) {
            // the kernels read the packed copy: drop the file's pages from this process's resident set
            // (madvise DONTNEED; they stay in the page cache), so a process holds the weights once, not twice
            t.data().unload();
        }
        bound.add((long) rows * cols);
        return matrix;
    }

    /** A [size] weight (a norm's scale), copied to fp32; {@code field} names the config field that gives its size. */
    float[] vector(String name, int size, String field) {
        Tensor t = checkpoint.tensor(name);
        if (t.elements() != size || t.shape().length != 1) {
            throw new ModelFormatException(t.file() + ": tensor '" + name + "' has shape " + t.shapeString()
                    + ", expected [" + size + "] (" + field + ")");
        }
        float[] out = new float[size];
        Matrix.of(t.type(), t.data(), 1, size).rowTo(0, out, 0);
        for (int i = 0; i < size; i++) {
            if (!Float.isFinite(out[i])) {
                throw t.damaged("element " + i + " is " + out[i] + ", not a finite number", null);
            }
        }
        return out;
    }
}
