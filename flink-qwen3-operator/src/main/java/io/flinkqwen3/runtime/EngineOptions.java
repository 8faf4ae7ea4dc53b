package io.flinkqwen3.runtime;

import io.flinkqwen3.tensor.DType;

/**
 * Engine settings.
 *
 * @param threads         kernel worker threads (default: available processors)
 * @param maxSequences    requests decoded together in one step
 * @param maxBatchTokens  tokens per forward pass; long prompts are prefilled in chunks of this size
 * @param maxContext      cap on positions per sequence (prompt + output); 0 = the model's maximum
 * @param quantize        convert the weights to this type at load time (Q8_0 or Q4_0), or null
 * @param expertShards    shards the experts of each MoE layer are split into, each run by one worker
 *                        per step (0: one per kernel thread; at most {@link Qwen3Model#MAX_EXPERT_SHARDS})
 * @param kvCacheMemory   bytes of the engine's whole KV cache ({@link KvBlockPool}); 0: the default,
 *                        {@link #defaultKvCacheTokens} positions
 * @param kvPrecision     how keys and values are stored (default bf16; fp32 for exact comparisons)
 * @param prefixCaching   whether requests reuse the KV cache of a token prefix they share with earlier ones
 */
public record EngineOptions(int threads, int maxSequences, int maxBatchTokens, int maxContext, DType quantize, int expertShards,
                            long kvCacheMemory, KvBlockPool.Precision kvPrecision, boolean prefixCaching) {
    /** Positions per sequence the default KV cache memory holds room for, at max sequences at once. */
    public static final int DEFAULT_KV_TOKENS_PER_SEQUENCE = 1024;

    public EngineOptions {
        if (kvCacheMemory < 0 || kvPrecision == null) {
            throw new IllegalArgumentException("invalid engine options: KV cache memory " + kvCacheMemory
                    + " bytes (0: default), precision " + kvPrecision);
        }
        io.flinkqwen3.tensor.Parallel.checkThreads("threads", threads);
        if (threads < 1 || maxSequences < 1 || maxBatchTokens < 1 || maxContext < 0 || expertShards < 0
                || expertShards > Qwen3Model.MAX_EXPERT_SHARDS) {
            throw new IllegalArgumentException("invalid engine options: threads " + threads + ", max sequences "
                    + maxSequences + ", max batch tokens " + maxBatchTokens + ", max context " + maxContext
                    + ", expert shards " + expertShards);
        }
    }

    public EngineOptions(int threads, int maxSequences, int maxBatchTokens, int maxContext, DType quantize, int expertShards) {
        this(threads, maxSequences, maxBatchTokens, maxContext, quantize, expertShards, 0, KvBlockPool.Precision.BF16, true);
    }

    public EngineOptions(int threads, int maxSequences, int maxBatchTokens, int maxContext) {
        this(threads, maxSequences, maxBatchTokens, maxContext, null, 0);
    }

    public static EngineOptions defaults() {
        return new EngineOptions(Runtime.getRuntime().availableProcessors(), 32, 512, 0, null, 0);
    }

    public EngineOptions withThreads(int t) {
        return new EngineOptions(t, maxSequences, maxBatchTokens, maxContext, quantize, expertShards, kvCacheMemory, kvPrecision,
                prefixCaching);
    }

    public EngineOptions withQuantize(DType q) {
        return new EngineOptions(threads, maxSequences, maxBatchTokens, maxContext, q, expertShards, kvCacheMemory, kvPrecision,
                prefixCaching);
    }

    public EngineOptions withExpertShards(int s) {
        return new EngineOptions(threads, maxSequences, maxBatchTokens, maxContext, quantize, s, kvCacheMemory, kvPrecision,
                prefixCaching);
    }

    /** With this KV cache memory (bytes; 0: default), precision and prefix caching switch. */
    public EngineOptions withKvCache(long memory, KvBlockPool.Precision precision, boolean prefixCache) {
        return new EngineOptions(threads, maxSequences, maxBatchTokens, maxContext, quantize, expertShards, memory, precision,
                prefixCache);
    }

    /**
     * Positions the default KV cache memory holds: {@link #DEFAULT_KV_TOKENS_PER_SEQUENCE} for each of
     * max sequences, and at least one sequence of the whole context, so every prompt the context
     * admits fits. The bytes are that times {@link KvBlockPool#bytesPerToken} of the model (e.g.
     * Qwen3-0.6B in bf16: 112 KiB per position; 32 sequences at a 4096 context: 3.5 GiB).
     */
    public long defaultKvCacheTokens(int contextLength) {
        return Math.max(contextLength, (long) maxSequences * DEFAULT_KV_TOKENS_PER_SEQUENCE);
    }
}
