package io.flinkqwen3.runtime;

import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Matrix;
import io.flinkqwen3.tensor.Parallel;

/**
 * The SwiGLU feed-forward of HF modeling_qwen3.py's Qwen3MLP: down(silu(gate(x)) * up(x)). Also one
 * expert of a {@link SparseMoeBlock}.
 */
record Mlp(Matrix gateProj, Matrix upProj, Matrix downProj, Parallel parallel) implements FeedForward {
    /**
     * Binds {@code <prefix>gate_proj.weight} [intermediate, hidden], up_proj alike and down_proj
     * [hidden, intermediate]; {@code intermediateField} is the config field of the intermediate size.
     */
    static Mlp bind(WeightBinder w, String prefix, int hidden, int intermediate, String intermediateField, Parallel parallel) {
        return new Mlp(w.matrix(prefix + "gate_proj.weight", intermediate, hidden, intermediateField + " x hidden_size"),
                w.matrix(prefix + "up_proj.weight", intermediate, hidden, intermediateField + " x hidden_size"),
                w.matrix(prefix + "down_proj.weight", hidden, intermediate, "hidden_size x " + intermediateField), parallel);
    }

    @Override
    public void forward(float[] x, int n, float[] out, ForwardObserver observer) {
        forward(x, n, out, new float[n * intermediate()], new float[n * intermediate()]);
    }

    /** x: [n, hidden] -> out: [n, hidden], in the caller's buffers gate and up (at least [n, intermediate] each). */
    void forward(float[] x, int n, float[] out, float[] gate, float[] up) {
        // x: [n, hidden] -> gate and up: [n, intermediate], in one parallel loop
        Matrix.matmulAll(parallel, x, n, new Matrix[] {gateProj, upProj}, new float[][] {gate, up});
        Kernels.siluAndMultiply(gate, up, n * intermediate()); // gate = silu(gate) * up
        downProj.matmul(gate, n, out, parallel); // gate: [n, intermediate] -> out: [n, hidden]
    }

    int intermediate() {
        return gateProj.rows();
    }
}
