package io.flinkqwen3.runtime;

import java.util.Arrays;

/**
 * Keys and values of one sequence, per layer, fp32. Grows with the sequence (doubling), so memory
 * follows the context actually used rather than the model's maximum.
 */
public final class KvCache {
    private final int kvDim;
    private final int maxPositions;
    private final float[][] keys;
    private final float[][] values;
    private int capacity;
    private int length;

    public KvCache(int layers, int kvDim, int maxPositions) {
        this.kvDim = kvDim;
        this.maxPositions = maxPositions;
        this.keys = new float[layers][];
        this.values = new float[layers][];
        this.capacity = 0;
        ensureCapacity(Math.min(16, maxPositions));
    }

    /** Number of positions written so far (the next token's position). */
    public int length() {
        return length;
    }

    public int maxPositions() {
        return maxPositions;
    }

    void ensureCapacity(int positions) {
        if (positions > maxPositions) {
            throw new IllegalStateException("sequence of " + positions + " tokens exceeds the context length " + maxPositions);
        }
        if (positions <= capacity) {
            return;
        }
        int next = Math.min(maxPositions, Math.max(positions, capacity * 2));
        for (int l = 0; l < keys.length; l++) {
            keys[l] = keys[l] == null ? new float[next * kvDim] : Arrays.copyOf(keys[l], next * kvDim);
            values[l] = values[l] == null ? new float[next * kvDim] : Arrays.copyOf(values[l], next * kvDim);
        }
        capacity = next;
    }

    void store(int layer, int position, float[] k, int kOff, float[] v, int vOff) {
        System.arraycopy(k, kOff, keys[layer], position * kvDim, kvDim);
        System.arraycopy(v, vOff, values[layer], position * kvDim, kvDim);
    }

    float[] keys(int layer) {
        return keys[layer];
    }

    float[] values(int layer) {
        return values[layer];
    }

    /** Marks positions [0, newLength) as valid, after a forward pass wrote them. */
    void advanceTo(int newLength) {
        length = Math.max(length, newLength);
    }

    /** Forgets everything after {@code newLength} (used when a sequence is rewound). */
    public void truncate(int newLength) {
        length = Math.min(length, newLength);
    }
}
