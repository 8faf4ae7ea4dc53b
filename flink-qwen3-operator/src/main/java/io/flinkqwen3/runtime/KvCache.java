package io.flinkqwen3.runtime;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Keys and values of one sequence, per layer, fp32, off the Java heap. Capacity grows with the
 * sequence (doubling, up to the context length), so memory follows the context actually used; the
 * engine resets and reuses caches of finished requests instead of allocating new ones.
 */
public final class KvCache {
    private final int kvDim;
    private final int maxPositions;
    private final MemorySegment[] keys;
    private final MemorySegment[] values;
    private int capacity;
    private int length;

    public KvCache(int layers, int kvDim, int maxPositions) {
        this.kvDim = kvDim;
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

    void store(int layer, int position, float[] k, int kOff, float[] v, int vOff) {
        long at = (long) position * kvDim * Float.BYTES;
        MemorySegment.copy(k, kOff, keys[layer], ValueLayout.JAVA_FLOAT_UNALIGNED, at, kvDim);
        MemorySegment.copy(v, vOff, values[layer], ValueLayout.JAVA_FLOAT_UNALIGNED, at, kvDim);
    }

    MemorySegment keys(int layer) {
        return keys[layer];
    }

    MemorySegment values(int layer) {
        return values[layer];
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
