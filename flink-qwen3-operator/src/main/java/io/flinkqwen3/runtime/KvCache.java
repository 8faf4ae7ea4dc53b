package io.flinkqwen3.runtime;

import io.flinkqwen3.tensor.Kernels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Keys and values of one sequence, per layer and key/value head, fp32, off the Java heap. Attention
 * reaches them through {@link #scores} and {@link #mixValues}; the layout is this class's own. Capacity grows with the
 * sequence (doubling, up to the context length), so memory follows the context actually used; the
 * engine resets and reuses caches of finished requests instead of allocating new ones.
 */
public final class KvCache {
    private final int headDim;
    private final int kvDim;
    private final int maxPositions;
    private final MemorySegment[] keys;
    private final MemorySegment[] values;
    private int capacity;
    private int length;

    public KvCache(int layers, int kvHeads, int headDim, int maxPositions) {
        this.headDim = headDim;
        this.kvDim = kvHeads * headDim;
        this.maxPositions = maxPositions;
        this.keys = new MemorySegment[layers];
        this.values = new MemorySegment[layers];
        ensureCapacity(Math.min(16, maxPositions));
    }

    /** Number of positions written so far (the next token's position). */
    public int length() {
        return length;
    }

    public int maxPositions() {
        return maxPositions;
    }

    /** Bytes held off-heap. */
    public long byteSize() {
        return 2L * keys.length * capacity * kvDim * Float.BYTES;
    }

    void ensureCapacity(int positions) {
        if (positions > maxPositions) {
            throw new IllegalStateException("sequence of " + positions + " tokens exceeds the context length " + maxPositions);
        }
        if (positions <= capacity) {
            return;
        }
        int next = Math.min(maxPositions, Math.max(positions, capacity * 2));
        // an automatic arena: a segment outgrown here is freed once nothing refers to it
        Arena arena = Arena.ofAuto();
        long bytes = (long) next * kvDim * Float.BYTES;
        for (int l = 0; l < keys.length; l++) {
            keys[l] = grow(keys[l], arena, bytes);
            values[l] = grow(values[l], arena, bytes);
        }
        capacity = next;
    }

    private static MemorySegment grow(MemorySegment old, Arena arena, long bytes) {
        MemorySegment fresh = arena.allocate(bytes, 64);
        if (old != null) {
            MemorySegment.copy(old, 0, fresh, 0, old.byteSize());
        }
        return fresh;
    }

    /** Stores a token's keys and values, k and v: [kvHeads * headDim] each, at a position below the capacity. */
    void store(int layer, int position, float[] k, int kOff, float[] v, int vOff) {
        long at = (long) position * kvDim * Float.BYTES;
        MemorySegment.copy(k, kOff, keys[layer], ValueLayout.JAVA_FLOAT_UNALIGNED, at, kvDim);
        MemorySegment.copy(v, vOff, values[layer], ValueLayout.JAVA_FLOAT_UNALIGNED, at, kvDim);
    }

    /** q: [rows, headDim] -> scores: [rows, keys], scores[r, t] = q[r] · key t of this head. */
    void scores(int layer, int head, float[] q, int rows, int keys, float[] scores) {
        for (int r = 0; r < rows; r++) {
            for (int t = 0; t < keys; t++) {
                scores[r * keys + t] = Kernels.dot(q, r * headDim, this.keys[layer], offset(t, head), headDim);
            }
        }
    }

    /** weights: [rows, keys] -> out: [rows, headDim], out[r] = sum over t of weights[r, t] * value t of this head. */
    void mixValues(int layer, int head, float[] weights, int rows, int keys, float[] out) {
        for (int r = 0; r < rows; r++) {
            for (int t = 0; t < keys; t++) {
                Kernels.axpy(weights[r * keys + t], values[layer], offset(t, head), out, r * headDim, headDim);
            }
        }
    }

    private long offset(int position, int head) {
        return ((long) position * kvDim + (long) head * headDim) * Float.BYTES;
    }

    /** Marks positions [0, newLength) as valid, after a forward pass wrote them. */
    void advanceTo(int newLength) {
        length = Math.max(length, newLength);
    }

    /** Forgets everything after {@code newLength}; 0 makes the cache ready for another sequence. */
    public void truncate(int newLength) {
        length = Math.min(length, newLength);
    }
}
