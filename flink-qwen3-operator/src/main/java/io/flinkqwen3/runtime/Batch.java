package io.flinkqwen3.runtime;

/**
 * The tokens of one forward pass as attention sees them: token i sits at position positions[i] of
 * the sequence whose keys and values caches[i] holds, and its queries and keys are rotated by
 * cos[i] and sin[i] ([headDim / 2] each, computed once for all layers).
 */
record Batch(int[] positions, KvCache[] caches, float[][] cos, float[][] sin) {
    static Batch of(int[] positions, KvCache[] caches, RotaryEmbedding rope) {
        int n = positions.length;
        float[][] cos = new float[n][], sin = new float[n][];
        for (int i = 0; i < n; i++) {
            cos[i] = new float[rope.halfDim()];
            sin[i] = new float[rope.halfDim()];
            rope.at(positions[i], cos[i], sin[i]);
        }
        return new Batch(positions, caches, cos, sin);
    }

    int size() {
        return positions.length;
    }
}
