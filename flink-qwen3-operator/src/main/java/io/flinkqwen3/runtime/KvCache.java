package io.flinkqwen3.runtime;

import static io.flinkqwen3.runtime.KvBlockPool.BLOCK_TOKENS;

import io.flinkqwen3.tensor.Kernels;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.IntVector;
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
            Kernels.matmulStrided(q, 0, headDim, rows, wide, slot, BLOCK_TOKENS, headDim, scores, start, keys, end - start);
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
            Kernels.matmulStrided(w, start, keys, rows, wide, slot * headDim, headDim, end - start, out, 0, headDim, headDim);
            start = end;
        }
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
