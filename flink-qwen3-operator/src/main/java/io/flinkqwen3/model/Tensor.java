package io.flinkqwen3.model;

import io.flinkqwen3.tensor.DType;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/** A named tensor in a checkpoint: its type, PyTorch-order shape ([out, in] for matrices) and bytes. */
public record Tensor(String name, String file, DType type, long[] shape, MemorySegment data) {
    public long elements() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    /**
     * The error for damaged contents: "FILE: tensor 'NAME' (TYPE): {@code detail} (the file is
     * damaged: download or convert it again)".
     */
    public ModelFormatException damaged(String detail, Throwable cause) {
        return new ModelFormatException(file + ": tensor '" + name + "' (" + type + "): " + detail
                + " (the file is damaged: download or convert it again)", cause);
    }
}
