package io.flinkqwen3.runtime;

/**
 * Sees intermediate values of a forward pass, for debugging and for checking them against the
 * transformers references. Arrays are [tokens, width] row-major and must not be kept.
 */
public interface ForwardObserver {
    ForwardObserver NONE = new ForwardObserver() {};

    /** layer 0: embeddings; layer l: output of decoder layer l-1; the last one is after the final norm. */
    default void hiddenState(int layer, float[] hidden, int tokens, int width) {}

    default void routerLogits(int layer, float[] logits, int tokens, int experts) {}
}
