package io.flinkqwen3.runtime;

import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.tensor.NativeMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Map;

/**
 * The KV cache memory of an engine: {@code blocks} blocks of {@link #BLOCK_TOKENS} token positions,
 * each holding the keys and values of its positions for every layer and key/value head, in one
 * off-heap mapping (touched, and so resident, only as blocks are first used; unmapped when the pool
 * is collected). Sequences ({@link KvCache}) hold blocks through a block table; blocks are
 * reference-counted, so sequences with a common token prefix share that prefix's blocks.
 *
 * <p>Prefix cache (as vLLM's automatic prefix caching): a block whose positions are all written is
 * registered under a key made of its tokens and its predecessor block (id and reuse epoch), so a
 * key names exactly one token prefix without hashing collisions. A new sequence {@link #open opens}
 * with the longest registered chain of its prompt's whole blocks. A registered block nobody refers
 * to stays cached in an LRU and is reused (forgotten) only when no never-used or freed block is left.
 *
 * <p>Reservations make running out of memory impossible during a step: a sequence reserves, when it
 * is admitted, every block it may ever need; {@link #open} refuses (returns null) when the free and
 * cached blocks do not cover all reservations, and the engine then keeps the request waiting.
 *
 * <p>Layout of block b, layer l, head h, element size e ({@link Precision}): keys at
 * {@code b * blockBytes + l * layerBytes + h * headBytes}, [headDim, BLOCK_TOKENS] (transposed, so
 * that scores read keys along rows); values after the layer's keys, at
 * {@code ... + (kvHeads + h) * headBytes}, [BLOCK_TOKENS, headDim]; headBytes =
 * BLOCK_TOKENS * headDim * e.
 *
 * <p>Not thread-safe: the engine's scheduler thread alone opens, extends and closes sequences;
 * kernel threads only read and write block contents.
 */
public final class KvBlockPool {
    /** Positions per block: 4 vectors of 16 floats, the column width of the attention kernels' register tile. */
    public static final int BLOCK_TOKENS = 64;

    /** How keys and values are stored. */
    public enum Precision {
        /** fp32: exact (tests that compare against references at 1e-4). */
        F32(4),
        /** bfloat16 (the top half of an fp32, rounded to nearest even): half the memory; the engine's default. */
        BF16(2);

        final int bytes;

        Precision(int bytes) {
            this.bytes = bytes;
        }
    }

    final Precision precision;
    final int layers;
    final int kvHeads;
    final int headDim;
    final long headBytes;
    final long layerBytes;
    final long blockBytes;
    final MemorySegment memory;
    private final int blocks;
    private final boolean prefixCaching;

    private final int[] refs;
    /** Bumped whenever a block is handed out again: a key naming (block, epoch) never matches reused memory. */
    private final long[] epochs;
    private final BlockKey[] keys;
    private final Map<BlockKey, Integer> index = new HashMap<>();
    /** Registered blocks nobody refers to, least recently released first. */
    private final LinkedHashSet<Integer> cached = new LinkedHashSet<>();
    /** Blocks never used or freed: lowest first, so the touched part of the mapping stays compact. */
    private final BitSet free = new BitSet();
    private long reserved;

    private volatile int inUse;
    private volatile int peakInUse;
    private volatile long lookedUpTokens;
    private volatile long hitTokens;

    /** A prefix-cache key: the block's tokens after the block (and its epoch) holding the preceding ones; -1: none. */
    private record BlockKey(int parent, long parentEpoch, int[] tokens) {
        @Override
        public boolean equals(Object o) {
            return o instanceof BlockKey k && k.parent == parent && k.parentEpoch == parentEpoch && Arrays.equals(k.tokens, tokens);
        }

        @Override
        public int hashCode() {
            return (Integer.hashCode(parent) * 31 + Long.hashCode(parentEpoch)) * 31 + Arrays.hashCode(tokens);
        }
    }

    /**
     * @param memoryBytes   the budget: as many whole blocks as fit (at least one)
     * @param prefixCaching whether full blocks are registered and looked up
     * @throws IllegalArgumentException when not even one block fits the budget
     */
    public KvBlockPool(int layers, int kvHeads, int headDim, Precision precision, long memoryBytes, boolean prefixCaching) {
        this.precision = precision;
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.prefixCaching = prefixCaching;
        this.headBytes = (long) BLOCK_TOKENS * headDim * precision.bytes;
        this.layerBytes = 2 * kvHeads * headBytes;
        this.blockBytes = layers * layerBytes;
        long count = memoryBytes / blockBytes;
        if (count < 1 || count > Integer.MAX_VALUE - 1) {
            throw new IllegalArgumentException("KV cache memory of " + memoryBytes + " bytes holds " + count + " blocks of "
                    + BLOCK_TOKENS + " tokens (" + blockBytes + " bytes each): need at least one");
        }
        this.blocks = (int) count;
        this.refs = new int[blocks];
        this.epochs = new long[blocks];
        this.keys = new BlockKey[blocks];
        free.set(0, blocks);
        // an automatic arena: the mapping is given back once the pool (and every cache using it) is unreachable
        this.memory = NativeMemory.allocate(count * blockBytes, Arena.ofAuto());
    }

    /** The pool of a model's shape. */
    public static KvBlockPool of(ModelConfig config, Precision precision, long memoryBytes, boolean prefixCaching) {
        return new KvBlockPool(config.numLayers(), config.numKvHeads(), config.headDim(), precision, memoryBytes, prefixCaching);
    }

    /** Bytes one token position takes: every layer's keys and values of all key/value heads. */
    public static long bytesPerToken(ModelConfig config, Precision precision) {
        return 2L * config.numLayers() * config.numKvHeads() * config.headDim() * precision.bytes;
    }

    /** Blocks that hold {@code positions} positions. */
    public static int blocksFor(int positions) {
        return Math.ceilDiv(positions, BLOCK_TOKENS);
    }

    public int blocks() {
        return blocks;
    }

    public long byteSize() {
        return memory.byteSize();
    }

    /** Blocks referred to by at least one sequence. */
    public int blocksInUse() {
        return inUse;
    }

    /** The most blocks in use at once since the pool was made. */
    public int peakBlocksInUse() {
        return peakInUse;
    }

    /** Bytes of one block: {@link #BLOCK_TOKENS} positions of every layer's keys and values. */
    public long blockBytes() {
        return blockBytes;
    }

    /** Blocks a new reservation may still claim: free ones and cached ones, less those already reserved. */
    public long available() {
        return free.cardinality() + cached.size() - reserved;
    }

    /** Share of prompt tokens looked up so far that were found in the prefix cache (0 when none was looked up). */
    public double hitRate() {
        long looked = lookedUpTokens;
        return looked == 0 ? 0 : (double) hitTokens / looked;
    }

    public long hitTokens() {
        return hitTokens;
    }

    public long lookedUpTokens() {
        return lookedUpTokens;
    }

    /**
     * A sequence for {@code prompt} that may grow to {@code maxPositions} positions, starting with the
     * prompt's longest cached prefix of whole blocks (never the whole prompt: its last token must run
     * to give logits), plus {@code extraBlocks} reserved for the sequence's own use
     * ({@link KvCache#takeScratchBlock}). Null, with nothing changed, when the pool cannot reserve that
     * much now; IllegalArgumentException when it never could.
     */
    public KvCache open(int[] prompt, int maxPositions, int extraBlocks) {
        int need = blocksFor(maxPositions) + extraBlocks;
        if (need > blocks) {
            throw new IllegalArgumentException("a sequence of " + maxPositions + " positions (+" + extraBlocks
                    + " scratch blocks) needs " + need + " KV cache blocks of " + BLOCK_TOKENS + " tokens, the cache has "
                    + blocks + " (" + memory.byteSize() + " bytes)");
        }
        int[] hits = lookup(prompt);
        int cachedHits = 0;
        for (int b : hits) {
            cachedHits += refs[b] == 0 ? 1 : 0;
        }
        long fresh = need - hits.length;
        if (free.cardinality() + cached.size() - cachedHits - reserved < fresh) {
            return null;
        }
        for (int b : hits) {
            retain(b);
        }
        reserved += fresh;
        lookedUpTokens += prompt.length;
        hitTokens += (long) hits.length * BLOCK_TOKENS;
        return new KvCache(this, maxPositions, hits, (int) fresh, prompt.length);
    }

    /** The registered blocks holding the longest prefix of whole blocks of tokens, short of the last token. */
    private int[] lookup(int[] tokens) {
        return lookup(tokens, 0, -1);
    }

    /** As {@link #lookup(int[])}, continuing after the first {@code found} whole blocks, the last of them {@code parent}. */
    private int[] lookup(int[] tokens, int found, int parent) {
        if (!prefixCaching) {
            return new int[0];
        }
        int max = (tokens.length - 1) / BLOCK_TOKENS, count = 0;
        int[] hits = new int[Math.max(0, max - found)];
        while (found + count < max) {
            Integer b = index.get(key(parent, tokens, found + count));
            if (b == null) {
                break;
            }
            hits[count++] = parent = b;
        }
        return Arrays.copyOf(hits, count);
    }

    /**
     * The registered blocks that continue a sequence's first {@code found} whole blocks of
     * {@code prompt} (the last of them {@code parent}, -1: none), at most {@code limit}, retained in
     * place of as many of the sequence's reserved blocks (which the pool takes back). They count as
     * prefix-cache hits.
     */
    int[] adopt(int[] prompt, int found, int parent, int limit) {
        int[] hits = lookup(prompt, found, parent);
        hits = Arrays.copyOf(hits, Math.min(hits.length, limit));
        for (int b : hits) {
            retain(b);
        }
        reserved -= hits.length;
        hitTokens += (long) hits.length * BLOCK_TOKENS;
        return hits;
    }

    private BlockKey key(int parent, int[] tokens, int block) {
        return new BlockKey(parent, parent < 0 ? 0 : epochs[parent],
                Arrays.copyOfRange(tokens, block * BLOCK_TOKENS, (block + 1) * BLOCK_TOKENS));
    }

    /** Registers full block {@code block} (of tokens[index * B, (index + 1) * B)) following block {@code parent} (-1: first). */
    void register(int parent, int block, int[] tokens, int blockIndex) {
        if (!prefixCaching || keys[block] != null) {
            return;
        }
        BlockKey key = key(parent, tokens, blockIndex);
        if (index.putIfAbsent(key, block) == null) { // else another sequence computed the same block first
            keys[block] = key;
        }
    }

    /** A block from a reservation: a free one, else the least recently used cached one (forgotten). */
    int take() {
        if (reserved <= 0) {
            throw new IllegalStateException("KV cache block taken without a reservation");
        }
        int b = free.nextSetBit(0);
        if (b >= 0) {
            free.clear(b);
        } else {
            var oldest = cached.iterator();
            b = oldest.next();
            oldest.remove();
            index.remove(keys[b]);
            keys[b] = null;
        }
        reserved--;
        epochs[b]++;
        refs[b] = 1;
        countInUse(1);
        return b;
    }

    private void retain(int block) {
        if (refs[block]++ == 0) {
            cached.remove(block);
            countInUse(1);
        }
    }

    private void countInUse(int change) {
        inUse += change; // written by the scheduler thread only
        peakInUse = Math.max(peakInUse, inUse);
    }

    /** Drops one reference; a block nobody refers to is cached when registered, else freed. */
    void release(int block) {
        if (--refs[block] == 0) {
            countInUse(-1);
            if (keys[block] != null) {
                cached.add(block);
            } else {
                free.set(block);
            }
        }
    }

    /** Drops the only reference to an unregistered block and reserves it again for its owner. */
    void releaseToReservation(int block) {
        release(block);
        reserved++;
    }

    /** Gives back blocks reserved and not taken. */
    void unreserve(int count) {
        reserved -= count;
    }

    /** Byte offset of the keys of {@code head} in {@code layer} of {@code block}: [headDim, BLOCK_TOKENS]. */
    long keys(int block, int layer, int head) {
        return block * blockBytes + layer * layerBytes + head * headBytes;
    }

    /** Byte offset of the values of {@code head} in {@code layer} of {@code block}: [BLOCK_TOKENS, headDim]. */
    long values(int block, int layer, int head) {
        return block * blockBytes + layer * layerBytes + (kvHeads + head) * headBytes;
    }
}
