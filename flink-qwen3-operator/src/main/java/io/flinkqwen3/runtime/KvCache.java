package io.flinkqwen3.runtime;

import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.NativeMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Keys and values of one sequence, per layer and key/value head, fp32, off the Java heap. Attention
 * reaches them only through {@link #scores} and {@link #mixValues}, so the layout is this class's
 * own: per layer,
 * <ul>
 *   <li>keys: [kvHeads, capacity / KEY_TILE, headDim, KEY_TILE], transposed within tiles of
 *       {@link #KEY_TILE} positions, so that a block of queries times a tile of keys is a small
 *       matrix product that reads the keys along rows, like the values;
 *   <li>values: [kvHeads, capacity, headDim].
 * </ul>
 * Each head's keys and values are contiguous, so attention streams them from memory in order.
 * Capacity grows with the sequence (doubling, in whole tiles, up to the context length), so memory
 * follows the context actually used; the engine resets and reuses caches of finished requests.
 */
public final class KvCache {
    private static final VectorSpecies<Float> F = Kernels.F;
    private static final int L = F.length();
    private static final long VECTOR_BYTES = (long) L * Float.BYTES;
    /** Positions per key tile: the column width of one register tile of {@link #matmul}. */
    static final int KEY_TILE = 4 * L;

    private final int kvHeads;
    private final int headDim;
    private final int maxPositions;
    private final MemorySegment[] keys;
    private final MemorySegment[] values;
    private int capacity;
    private int length;

    public KvCache(int layers, int kvHeads, int headDim, int maxPositions) {
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.maxPositions = maxPositions;
        this.keys = new MemorySegment[layers];
        this.values = new MemorySegment[layers];
        ensureCapacity(Math.min(1, maxPositions));
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
        return 2L * keys.length * capacity * kvHeads * headDim * Float.BYTES;
    }

    void ensureCapacity(int positions) {
        if (positions > maxPositions) {
            throw new IllegalStateException("sequence of " + positions + " tokens exceeds the context length " + maxPositions);
        }
        if (positions <= capacity) {
            return;
        }
        int next = Math.ceilDiv(Math.min(maxPositions, Math.max(positions, capacity * 2)), KEY_TILE) * KEY_TILE;
        // an automatic arena: a segment outgrown here is freed once nothing refers to it
        Arena arena = Arena.ofAuto();
        for (int l = 0; l < keys.length; l++) {
            keys[l] = grow(keys[l], arena, next);
            values[l] = grow(values[l], arena, next);
        }
        capacity = next;
    }

    /** A segment for {@code positions} positions holding the old one's heads, each at its new place. */
    private MemorySegment grow(MemorySegment old, Arena arena, int positions) {
        long headBytes = (long) positions * headDim * Float.BYTES, oldHeadBytes = (long) capacity * headDim * Float.BYTES;
        // anonymous memory: outside MaxDirectMemorySize, which Flink sets small for a task manager
        MemorySegment fresh = NativeMemory.allocate(kvHeads * headBytes, arena);
        for (int h = 0; old != null && h < kvHeads; h++) {
            MemorySegment.copy(old, h * oldHeadBytes, fresh, h * headBytes, oldHeadBytes);
        }
        return fresh;
    }

    /** Stores one token's keys and values (k, v: [kvHeads * headDim] from kOff, vOff) at a position below the capacity. */
    void store(int layer, int position, float[] k, int kOff, float[] v, int vOff) {
        for (int h = 0; h < kvHeads; h++) {
            long key = keyTile(h, position / KEY_TILE) / Float.BYTES + position % KEY_TILE; // dimension 0, as a float index
            for (int d = 0; d < headDim; d++) {
                keys[layer].setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, key + (long) d * KEY_TILE, k[kOff + h * headDim + d]);
            }
            MemorySegment.copy(v, vOff + h * headDim, values[layer], ValueLayout.JAVA_FLOAT_UNALIGNED,
                    ((long) h * capacity + position) * headDim * Float.BYTES, headDim);
        }
    }

    /** Byte offset of key tile {@code tile} ([headDim, KEY_TILE]) of a head. */
    private long keyTile(int head, int tile) {
        return ((long) head * capacity + (long) tile * KEY_TILE) * headDim * Float.BYTES;
    }

    /** q: [rows, headDim] -> scores: [rows, keys], scores[r, t] = q[r] · key t of this head. rows: a multiple of 4. */
    void scores(int layer, int head, float[] q, int rows, int keys, float[] scores) {
        for (int t = 0; t < keys; t += KEY_TILE) {
            matmul(q, headDim, rows, this.keys[layer], keyTile(head, t / KEY_TILE), KEY_TILE * Float.BYTES, headDim,
                    scores, t, keys, Math.min(KEY_TILE, keys - t));
        }
    }

    /**
     * weights: [rows, keys] -> out: [rows, headDim], out[r] = sum over t of weights[r, t] * value t
     * of this head. rows: a multiple of 4.
     */
    void mixValues(int layer, int head, float[] weights, int rows, int keys, float[] out) {
        matmul(weights, keys, rows, values[layer], (long) head * capacity * headDim * Float.BYTES,
                (long) headDim * Float.BYTES, keys, out, 0, headDim, headDim);
    }

    /**
     * c[r, j] = sum over k < inner of a[r * aStride + k] * b[k, j], for r < rows (a multiple of 4)
     * and j < cols; row k of b is cols floats at byte bOff + k * bStride, row r of c starts at
     * cOff + r * cStride. A register tile of 4 rows by 4 vectors: every vector of b loaded serves 4
     * rows, every value of a 4 vectors.
     */
    private static void matmul(float[] a, int aStride, int rows, MemorySegment b, long bOff, long bStride, int inner,
                               float[] c, int cOff, int cStride, int cols) {
        var order = ByteOrder.LITTLE_ENDIAN;
        for (int r = 0; r < rows; r += 4) {
            int a0 = r * aStride, a1 = a0 + aStride, a2 = a1 + aStride, a3 = a2 + aStride;
            int c0 = cOff + r * cStride, c1 = c0 + cStride, c2 = c1 + cStride, c3 = c2 + cStride;
            int j = 0;
            for (; j + KEY_TILE <= cols; j += KEY_TILE) {
                var s00 = FloatVector.zero(F);
                var s01 = FloatVector.zero(F);
                var s02 = FloatVector.zero(F);
                var s03 = FloatVector.zero(F);
                var s10 = FloatVector.zero(F);
                var s11 = FloatVector.zero(F);
                var s12 = FloatVector.zero(F);
                var s13 = FloatVector.zero(F);
                var s20 = FloatVector.zero(F);
                var s21 = FloatVector.zero(F);
                var s22 = FloatVector.zero(F);
                var s23 = FloatVector.zero(F);
                var s30 = FloatVector.zero(F);
                var s31 = FloatVector.zero(F);
                var s32 = FloatVector.zero(F);
                var s33 = FloatVector.zero(F);
                long p = bOff + (long) j * Float.BYTES;
                for (int k = 0; k < inner; k++, p += bStride) {
                    var b0 = FloatVector.fromMemorySegment(F, b, p, order);
                    var b1 = FloatVector.fromMemorySegment(F, b, p + VECTOR_BYTES, order);
                    var b2 = FloatVector.fromMemorySegment(F, b, p + 2 * VECTOR_BYTES, order);
                    var b3 = FloatVector.fromMemorySegment(F, b, p + 3 * VECTOR_BYTES, order);
                    var x = FloatVector.broadcast(F, a[a0 + k]);
                    s00 = b0.fma(x, s00);
                    s01 = b1.fma(x, s01);
                    s02 = b2.fma(x, s02);
                    s03 = b3.fma(x, s03);
                    x = FloatVector.broadcast(F, a[a1 + k]);
                    s10 = b0.fma(x, s10);
                    s11 = b1.fma(x, s11);
                    s12 = b2.fma(x, s12);
                    s13 = b3.fma(x, s13);
                    x = FloatVector.broadcast(F, a[a2 + k]);
                    s20 = b0.fma(x, s20);
                    s21 = b1.fma(x, s21);
                    s22 = b2.fma(x, s22);
                    s23 = b3.fma(x, s23);
                    x = FloatVector.broadcast(F, a[a3 + k]);
                    s30 = b0.fma(x, s30);
                    s31 = b1.fma(x, s31);
                    s32 = b2.fma(x, s32);
                    s33 = b3.fma(x, s33);
                }
                store4(c, c0 + j, s00, s01, s02, s03);
                store4(c, c1 + j, s10, s11, s12, s13);
                store4(c, c2 + j, s20, s21, s22, s23);
                store4(c, c3 + j, s30, s31, s32, s33);
            }
            for (; j < cols; j += L) { // columns left over: one (masked) vector at a time
                VectorMask<Float> m = F.indexInRange(j, cols);
                var s0 = FloatVector.zero(F);
                var s1 = FloatVector.zero(F);
                var s2 = FloatVector.zero(F);
                var s3 = FloatVector.zero(F);
                long p = bOff + (long) j * Float.BYTES;
                for (int k = 0; k < inner; k++, p += bStride) {
                    var bv = FloatVector.fromMemorySegment(F, b, p, order, m);
                    s0 = bv.fma(FloatVector.broadcast(F, a[a0 + k]), s0);
                    s1 = bv.fma(FloatVector.broadcast(F, a[a1 + k]), s1);
                    s2 = bv.fma(FloatVector.broadcast(F, a[a2 + k]), s2);
                    s3 = bv.fma(FloatVector.broadcast(F, a[a3 + k]), s3);
                }
                s0.intoArray(c, c0 + j, m);
                s1.intoArray(c, c1 + j, m);
                s2.intoArray(c, c2 + j, m);
                s3.intoArray(c, c3 + j, m);
            }
        }
    }

    private static void store4(float[] c, int off, FloatVector v0, FloatVector v1, FloatVector v2, FloatVector v3) {
        v0.intoArray(c, off);
        v1.intoArray(c, off + L);
        v2.intoArray(c, off + 2 * L);
        v3.intoArray(c, off + 3 * L);
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
