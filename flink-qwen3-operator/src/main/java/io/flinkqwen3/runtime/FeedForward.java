package io.flinkqwen3.runtime;

/** The feed-forward block of a decoder layer: the only part where qwen3 and qwen3_moe differ. */
sealed interface FeedForward permits Mlp, SparseMoeBlock {
    /** x: [n, hidden] -> out: [n, hidden] (overwritten). */
    void forward(float[] x, int n, float[] out, ForwardObserver observer);
}
