package io.flinkqwen3.runtime;

import static io.flinkqwen3.runtime.KvBlockPool.BLOCK_TOKENS;

import io.flinkqwen3.tensor.Kernels;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Keys and values of one sequence, per layer and key/value head, in blocks of a {@link KvBlockPool}
 * listed by a block table: position p lives in block table[p / BLOCK_TOKENS] at slot
 * p % BLOCK_TOKENS. Attention reaches them only through {@link #store}, {@link #scores} and
 * {@link #mixValues}, which walk the table block by block.
 *
 * <p>A fork ({@link #fork}) shares its parent's positions [0, parent length) read-only (whole
 * blocks and the partial last one, without copying) and keeps its own positions in a slot range of
 * a scratch block: copy-on-write where the only write is the fork's own continuation. Label scoring
 * runs every label of a request as such a fork of the prompt.
 *
 * <p>Closing a sequence releases its blocks (its full blocks stay in the pool's prefix cache) and
 * its reservation. Used by the engine's scheduler thread; kernel threads only store and read.
 */
public final class KvCache implements AutoCloseable {
    private static final VectorSpecies<Float> F = Kernels.F;
    private static final int L = F.length();
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Columns of one register tile of {@link #matmul}: 4 vectors. */
    private static final int TILE = 4 * L;

    private final KvBlockPool pool;
    private final MemorySegment memory;
    private final boolean bf16;
    private final int maxPositions;
    private int[] table;
    private int blockCount;
    /** Leading blocks of the table that are registered in (or were found in) the prefix cache. */
    private int registered;
    private int reserved;
    private int length;
    /** The token at each written position (keys of the prefix cache); null in a fork. */
    private int[] tokens;
    /** Forks: positions from tailStart on live in tailBlock from slot tailSlot. Integer.MAX_VALUE otherwise. */
    private final int tailStart;
    private final int tailBlock;
    private final int tailSlot;
    private boolean closed;

    /** A sequence starting with the cached blocks {@code hits} and {@code reserved} more blocks reserved. */
    KvCache(KvBlockPool pool, int maxPositions, int[] hits, int reserved, int expectedTokens) {
        this.pool = pool;
        this.memory = pool.memory;
        this.bf16 = pool.precision == KvBlockPool.Precision.BF16;
        this.maxPositions = maxPositions;
        this.table = Arrays.copyOf(hits, Math.max(4, hits.length + 1));
        this.blockCount = hits.length;
        this.registered = hits.length;
        this.reserved = reserved;
        this.length = hits.length * BLOCK_TOKENS;
        this.tokens = new int[Math.max(length, Math.min(maxPositions, Math.max(expectedTokens, 16)))];
        this.tailStart = Integer.MAX_VALUE;
        this.tailBlock = -1;
        this.tailSlot = 0;
    }

    private KvCache(KvCache parent, int tailBlock, int tailSlot, int tailPositions) {
        this.pool = parent.pool;
        this.memory = parent.memory;
        this.bf16 = parent.bf16;
        this.length = parent.length;
        this.maxPositions = parent.length + tailPositions;
        this.table = parent.table; // read only: the parent does not change while its forks run
        this.blockCount = blocksFor(parent.length);
        this.tailStart = parent.length;
        this.tailBlock = tailBlock;
        this.tailSlot = tailSlot;
    }

    /**
     * An fp32 sequence of up to {@code maxPositions} positions in a pool of its own, with every block
     * reserved: for tests and tools that run the model without an engine.
     */
    public static KvCache standalone(int layers, int kvHeads, int headDim, int maxPositions, KvBlockPool.Precision precision) {
        int blocks = KvBlockPool.blocksFor(Math.max(1, maxPositions));
        long blockBytes = 2L * layers * kvHeads * headDim * BLOCK_TOKENS * precision.bytes;
        var pool = new KvBlockPool(layers, kvHeads, headDim, precision, blocks * blockBytes, false);
        return pool.open(new int[0], maxPositions, 0);
    }

    private static int blocksFor(int positions) {
        return KvBlockPool.blocksFor(positions);
    }

    /** Number of positions written so far (the next token's position). */
    public int length() {
        return length;
    }

    /** The most positions this sequence may hold (its reservation). */
    public int maxPositions() {
        return maxPositions;
    }

    /** Bytes of the blocks this sequence refers to (shared ones included). */
    public long byteSize() {
        return blockCount * pool.blockBytes;
    }

    /** Takes blocks from the reservation until positions [0, positions) have a place. */
    void ensureCapacity(int positions) {
        if (positions > maxPositions) {
            throw new IllegalStateException("sequence of " + positions + " tokens exceeds its " + maxPositions + " positions");
        }
        if (tailBlock >= 0) {
            return; // a fork's positions were placed when it was made
        }
        while (blockCount * BLOCK_TOKENS < positions) {
            if (blockCount == table.length) {
                table = Arrays.copyOf(table, table.length * 2);
            }
            reserved--;
            table[blockCount++] = pool.take();
        }
    }

    /**
     * Takes up whole blocks of {@code prompt} that entered the prefix cache since this sequence
     * opened, when everything it holds so far is whole registered blocks (a request admitted
     * together with others of the same prefix finds the blocks the first of them wrote); they
     * replace blocks of its reservation. Returns the positions gained (0: none, or a fork).
     */
    int adoptCachedPrefix(int[] prompt) {
        if (tailBlock >= 0 || closed || blockCount != registered || length != blockCount * BLOCK_TOKENS) {
            return 0;
        }
        int[] more = pool.adopt(prompt, blockCount, blockCount == 0 ? -1 : table[blockCount - 1], reserved);
        if (more.length == 0) {
            return 0;
        }
        if (blockCount + more.length > table.length) {
            table = Arrays.copyOf(table, Math.max(table.length * 2, blockCount + more.length + 1));
        }
        System.arraycopy(more, 0, table, blockCount, more.length);
        blockCount += more.length;
        registered = blockCount;
        reserved -= more.length;
        length = blockCount * BLOCK_TOKENS;
        return more.length * BLOCK_TOKENS;
    }

    /**
     * A block of this sequence's own reservation for forks' positions ({@link #fork}); give it back
     * with {@link #releaseScratchBlock}.
     */
    int takeScratchBlock() {
        if (reserved <= blocksFor(maxPositions) - blockCount) {
            throw new IllegalStateException("no scratch block reserved for this sequence");
        }
        reserved--;
        return pool.take();
    }

    void releaseScratchBlock(int block) {
        reserved++;
        pool.releaseToReservation(block);
    }

    /**
     * A sequence that continues this one's positions [0, length) with {@code positions} more in
     * slots [slot, slot + positions) of {@code scratchBlock}. This sequence must not change while
     * the fork is in use; closing the fork does nothing.
     */
    KvCache fork(int scratchBlock, int slot, int positions) {
        if (slot < 0 || slot % 2 != 0 || slot + positions > BLOCK_TOKENS) { // even: positions pair up as in a block
            throw new IllegalArgumentException("fork slots [" + slot + ", " + (slot + positions) + ") not an even start within a block");
        }
        return new KvCache(this, scratchBlock, slot, positions);
    }

    /** Stores one token's keys and values (k, v: [kvHeads * headDim] from kOff, vOff) at a position with a place. */
    void store(int layer, int position, float[] k, int kOff, float[] v, int vOff) {
        int block, slot;
        if (position >= tailStart) {
            block = tailBlock;
            slot = tailSlot + position - tailStart;
        } else {
            block = table[position / BLOCK_TOKENS];
            slot = position % BLOCK_TOKENS;
        }
        int headDim = pool.headDim;
        for (int h = 0; h < pool.kvHeads; h++) {
            long keys = pool.keys(block, layer, h), values = pool.values(block, layer, h);
            int kAt = kOff + h * headDim, vAt = vOff + h * headDim;
            for (int d = 0; d < headDim; d++) {
                put(keys + (bf16 ? ((long) (d >> 1) * BLOCK_TOKENS + slot) * 4 + (d & 1) * 2 : ((long) d * BLOCK_TOKENS + slot) * 4),
                        k[kAt + d]);
                put(values + (bf16 ? ((long) (slot >> 1) * headDim + d) * 4 + (slot & 1) * 2 : ((long) slot * headDim + d) * 4),
                        v[vAt + d]);
            }
        }
    }

    private void put(long at, float x) {
        if (bf16) {
            memory.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, bf16(x));
        } else {
            memory.set(ValueLayout.JAVA_FLOAT_UNALIGNED, at, x);
        }
    }

    /** fp32 to bfloat16, rounded to nearest even (finite values). */
    static short bf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }

    /** Per-thread fp32 copy of one block of one head's keys or values ([BLOCK_TOKENS * headDim]), grown on demand. */
    private static final ThreadLocal<float[][]> WIDE = ThreadLocal.withInitial(() -> new float[1][0]);

    private float[] wide() {
        float[][] holder = WIDE.get();
        int size = BLOCK_TOKENS * pool.headDim;
        if (holder[0].length < size) {
            holder[0] = new float[size];
        }
        return holder[0];
    }

    /**
     * Copies {@code pairs} stored row pairs of {@code width} elements from byte {@code base} into
     * fp32 rows of {@code wide} from row 2 * firstPair. bf16 keeps a row pair in one row of ints,
     * the even row in the low halves: a shift widens those, a mask the odd row's. Widening a block
     * into a small array the kernel then reads from cache costs far less than widening inside the
     * kernel's register tile, which C2 no longer compiles without boxing its vectors.
     */
    private void widen(long base, int firstPair, int pairs, int width, float[] wide) {
        long rowBytes = (bf16 ? 1 : 2) * width * 4L;
        if (!bf16) {
            MemorySegment.copy(memory, ValueLayout.JAVA_FLOAT_UNALIGNED, base + firstPair * rowBytes, wide, 2 * firstPair * width,
                    2 * pairs * width);
            return;
        }
        for (int i = firstPair; i < firstPair + pairs; i++) {
            long p = base + i * rowBytes;
            int even = 2 * i * width, odd = even + width;
            int j = 0;
            for (; j + L <= width; j += L, p += L * 4L) {
                var ints = IntVector.fromMemorySegment(I, memory, p, LE);
                ints.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(wide, even + j);
                ints.and(0xFFFF0000).reinterpretAsFloats().intoArray(wide, odd + j);
            }
            for (; j < width; j++, p += 4) { // a head dimension that is no multiple of the vector
                int pair = memory.get(ValueLayout.JAVA_INT_UNALIGNED, p);
                wide[even + j] = Float.intBitsToFloat(pair << 16);
                wide[odd + j] = Float.intBitsToFloat(pair & 0xFFFF0000);
            }
        }
    }

    /** q: [rows, headDim] -> scores: [rows, keys], scores[r, t] = q[r] · key t of this head. rows: a multiple of 4. */
    void scores(int layer, int head, float[] q, int rows, int keys, float[] scores) {
        int headDim = pool.headDim, shared = Math.min(keys, tailStart);
        float[] wide = wide(); // [headDim, BLOCK_TOKENS]
        Arrays.fill(scores, 0, rows * keys, 0f);
        for (int start = 0; start < keys; ) {
            boolean inTable = start < shared;
            int end = inTable ? Math.min(start + BLOCK_TOKENS, shared) : keys, slot = inTable ? 0 : tailSlot;
            widen(pool.keys(inTable ? table[start / BLOCK_TOKENS] : tailBlock, layer, head), 0, headDim / 2, BLOCK_TOKENS, wide);
            matmul(q, 0, headDim, rows, wide, slot, BLOCK_TOKENS, headDim, scores, start, keys, end - start);
            start = end;
        }
    }

    /**
     * weights: [rows, keys] -> out: [rows, headDim], out[r] = sum over t of weights[r, t] * value t
     * of this head, block by block. rows: a multiple of 4.
     */
    void mixValues(int layer, int head, float[] w, int rows, int keys, float[] out) {
        int headDim = pool.headDim, shared = Math.min(keys, tailStart);
        float[] wide = wide(); // [BLOCK_TOKENS, headDim]
        Arrays.fill(out, 0, rows * headDim, 0f);
        for (int start = 0; start < keys; ) {
            boolean inTable = start < shared;
            int end = inTable ? Math.min(start + BLOCK_TOKENS, shared) : keys, slot = inTable ? 0 : tailSlot; // slot: even
            widen(pool.values(inTable ? table[start / BLOCK_TOKENS] : tailBlock, layer, head), slot / 2,
                    Math.ceilDiv(end - start, 2), headDim, wide);
            matmul(w, start, keys, rows, wide, slot * headDim, headDim, end - start, out, 0, headDim, headDim);
            start = end;
        }
    }

    /**
     * c[r, cOff + j] += sum over k < inner of a[r * aStride + aOff + k] * b[bOff + k * bStride + j],
     * for r < rows (a multiple of 4) and j < cols: register tiles of 4 rows by 4 vectors, then
     * one (masked) vector at a time for the columns left. The tiles are methods of their own: in
     * one method with the loops around them, C1 runs out of registers compiling it and C2 never
     * gets to, which leaves the Vector API's Java fallback running (100x slower).
     */
    private static void matmul(float[] a, int aOff, int aStride, int rows, float[] b, int bOff, int bStride, int inner,
                               float[] c, int cOff, int cStride, int cols) {
        for (int r = 0; r < rows; r += 4) {
            int a0 = r * aStride + aOff, c0 = cOff + r * cStride;
            int j = 0;
            for (; j + TILE <= cols; j += TILE) {
                tile4x4(a, a0, aStride, b, bOff + j, bStride, inner, c, c0 + j, cStride);
            }
            for (; j < cols; j += L) {
                tile4x1(a, a0, aStride, b, bOff + j, bStride, inner, c, c0 + j, cStride, F.indexInRange(j, cols));
            }
        }
    }

    /**
     * 4 rows by 4 vectors: every vector of b loaded serves 4 rows, every value of a 4 vectors.
     * c[i * cStride + c0 + x] += sum over k of a[a0 + i * aStride + k] * b[p0 + k * bStride + x], i < 4, x < 4L.
     */
    private static void tile4x4(float[] a, int a0, int aStride, float[] b, int p0, int bStride, int inner, float[] c, int c0,
                                int cStride) {
        int a1 = a0 + aStride, a2 = a1 + aStride, a3 = a2 + aStride;
        int c1 = c0 + cStride, c2 = c1 + cStride, c3 = c2 + cStride;
        var s00 = FloatVector.fromArray(F, c, c0);
        var s01 = FloatVector.fromArray(F, c, c0 + L);
        var s02 = FloatVector.fromArray(F, c, c0 + 2 * L);
        var s03 = FloatVector.fromArray(F, c, c0 + 3 * L);
        var s10 = FloatVector.fromArray(F, c, c1);
        var s11 = FloatVector.fromArray(F, c, c1 + L);
        var s12 = FloatVector.fromArray(F, c, c1 + 2 * L);
        var s13 = FloatVector.fromArray(F, c, c1 + 3 * L);
        var s20 = FloatVector.fromArray(F, c, c2);
        var s21 = FloatVector.fromArray(F, c, c2 + L);
        var s22 = FloatVector.fromArray(F, c, c2 + 2 * L);
        var s23 = FloatVector.fromArray(F, c, c2 + 3 * L);
        var s30 = FloatVector.fromArray(F, c, c3);
        var s31 = FloatVector.fromArray(F, c, c3 + L);
        var s32 = FloatVector.fromArray(F, c, c3 + 2 * L);
        var s33 = FloatVector.fromArray(F, c, c3 + 3 * L);
        for (int k = 0, p = p0; k < inner; k++, p += bStride) {
            var b0 = FloatVector.fromArray(F, b, p);
            var b1 = FloatVector.fromArray(F, b, p + L);
            var b2 = FloatVector.fromArray(F, b, p + 2 * L);
            var b3 = FloatVector.fromArray(F, b, p + 3 * L);
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
        store4(c, c0, s00, s01, s02, s03);
        store4(c, c1, s10, s11, s12, s13);
        store4(c, c2, s20, s21, s22, s23);
        store4(c, c3, s30, s31, s32, s33);
    }

    /** {@link #tile4x4} for one vector of columns, masked (the columns left over). */
    private static void tile4x1(float[] a, int a0, int aStride, float[] b, int p0, int bStride, int inner, float[] c, int c0,
                                int cStride, VectorMask<Float> m) {
        int a1 = a0 + aStride, a2 = a1 + aStride, a3 = a2 + aStride;
        int c1 = c0 + cStride, c2 = c1 + cStride, c3 = c2 + cStride;
        var s0 = FloatVector.fromArray(F, c, c0, m);
        var s1 = FloatVector.fromArray(F, c, c1, m);
        var s2 = FloatVector.fromArray(F, c, c2, m);
        var s3 = FloatVector.fromArray(F, c, c3, m);
        for (int k = 0, p = p0; k < inner; k++, p += bStride) {
            var bv = FloatVector.fromArray(F, b, p, m);
            s0 = bv.fma(FloatVector.broadcast(F, a[a0 + k]), s0);
            s1 = bv.fma(FloatVector.broadcast(F, a[a1 + k]), s1);
            s2 = bv.fma(FloatVector.broadcast(F, a[a2 + k]), s2);
            s3 = bv.fma(FloatVector.broadcast(F, a[a3 + k]), s3);
        }
        s0.intoArray(c, c0, m);
        s1.intoArray(c, c1, m);
        s2.intoArray(c, c2, m);
        s3.intoArray(c, c3, m);
    }

    private static void store4(float[] c, int off, FloatVector v0, FloatVector v1, FloatVector v2, FloatVector v3) {
        v0.intoArray(c, off);
        v1.intoArray(c, off + L);
        v2.intoArray(c, off + 2 * L);
        v3.intoArray(c, off + 3 * L);
    }

    /**
     * Marks a position written by a forward pass with its token; a block whose last position this
     * is joins the prefix cache (when its predecessors are there).
     */
    void written(int position, int token) {
        length = Math.max(length, position + 1);
        if (tailBlock >= 0) {
            return;
        }
        if (position >= tokens.length) {
            tokens = Arrays.copyOf(tokens, Math.min(maxPositions, Math.max(position + 1, tokens.length * 2)));
        }
        tokens[position] = token;
        while (registered < blockCount && length >= (registered + 1) * BLOCK_TOKENS) {
            pool.register(registered == 0 ? -1 : table[registered - 1], table[registered], tokens, registered);
            registered++;
        }
    }

    /** Releases the blocks (full ones stay cached in the pool) and what is left of the reservation. Idempotent. */
    @Override
    public void close() {
        if (closed || tailBlock >= 0) {
            return;
        }
        closed = true;
        for (int b = 0; b < blockCount; b++) {
            pool.release(table[b]);
        }
        pool.unreserve(reserved);
        blockCount = 0;
        reserved = 0;
        length = 0;
    }
}
