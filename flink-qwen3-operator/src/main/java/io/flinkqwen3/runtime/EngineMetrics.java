package io.flinkqwen3.runtime;

import java.util.concurrent.atomic.AtomicLong;

/**
 * What a scheduler needs to know about the engine: measured seconds per decode step by batch size
 * (exponential moving average), prefill seconds per token, queue length, tokens/s; for MoE models how
 * the last step's routed tokens fell on the expert shards; the KV cache's blocks in use and prefix-cache
 * hit rate.
 */
public final class EngineMetrics implements StepCosts {
    private static final double ALPHA = 0.2;
    private static final int MAX_TRACKED_BATCH = 256;

    private final double[] stepSeconds = new double[MAX_TRACKED_BATCH + 1];
    private volatile double prefillSecondsPerToken = Double.NaN;
    private final AtomicLong generatedTokens = new AtomicLong();
    private final AtomicLong prefillTokens = new AtomicLong();
    private final long startNanos = System.nanoTime();
    private volatile int queued;
    private volatile int active;
    private volatile int lastBatchSize;
    private volatile ExpertShardLoad expertShards = ExpertShardLoad.NONE;
    private volatile KvBlockPool kvCache;

    synchronized void recordStep(int decodeSequences, int prefillTokensInStep, double seconds) {
        lastBatchSize = decodeSequences;
        if (prefillTokensInStep == 0 && decodeSequences > 0) {
            int b = Math.min(decodeSequences, MAX_TRACKED_BATCH);
            stepSeconds[b] = stepSeconds[b] == 0 ? seconds : (1 - ALPHA) * stepSeconds[b] + ALPHA * seconds;
        } else if (prefillTokensInStep > 0) {
            double perToken = seconds / (prefillTokensInStep + decodeSequences);
            prefillSecondsPerToken = Double.isNaN(prefillSecondsPerToken) ? perToken
                    : (1 - ALPHA) * prefillSecondsPerToken + ALPHA * perToken;
        }
        generatedTokens.addAndGet(decodeSequences);
        prefillTokens.addAndGet(prefillTokensInStep);
    }

    void recordExpertShards(ExpertShardLoad load) {
        expertShards = load;
    }

    void kvCache(KvBlockPool pool) {
        this.kvCache = pool;
    }

    /** Share of prompt tokens found in the prefix cache since the engine started (0 before any request). */
    public double prefixCacheHitRate() {
        return kvCache == null ? 0 : kvCache.hitRate();
    }

    /** Prompt tokens found in the prefix cache since the engine started (not run again). */
    public long prefixCacheHitTokens() {
        return kvCache == null ? 0 : kvCache.hitTokens();
    }

    /** KV cache blocks that running sequences refer to (cached prefixes nobody uses are not counted). */
    public int kvBlocksInUse() {
        return kvCache == null ? 0 : kvCache.blocksInUse();
    }

    /** KV cache blocks in all (the kv-cache-memory budget in blocks of {@link KvBlockPool#BLOCK_TOKENS} positions). */
    public int kvBlocks() {
        return kvCache == null ? 0 : kvCache.blocks();
    }

    void recordQueue(int queued, int active) {
        this.queued = queued;
        this.active = active;
    }

    /** Seconds per decode step at this batch size: measured, else the nearest measured size scaled, else NaN. */
    @Override
    public synchronized double decodeStepSeconds(int batchSize) {
        int b = Math.max(1, Math.min(batchSize, MAX_TRACKED_BATCH));
        if (stepSeconds[b] > 0) {
            return stepSeconds[b];
        }
        for (int d = 1; d <= MAX_TRACKED_BATCH; d++) {
            if (b - d >= 1 && stepSeconds[b - d] > 0) {
                return stepSeconds[b - d]; // a larger batch costs at least as much
            }
            if (b + d <= MAX_TRACKED_BATCH && stepSeconds[b + d] > 0) {
                return stepSeconds[b + d];
            }
        }
        return Double.NaN;
    }

    @Override
    public double prefillSecondsPerToken() {
        return prefillSecondsPerToken;
    }

    @Override
    public int queued() {
        return queued;
    }

    @Override
    public int active() {
        return active;
    }

    public int lastBatchSize() {
        return lastBatchSize;
    }

    /** Tokens the last step routed to each expert shard (summed over MoE layers) and the imbalance; NONE for a dense model. */
    public ExpertShardLoad expertShards() {
        return expertShards;
    }

    /** {@link ExpertShardLoad#imbalance()} of the last step: its MoE time over that of a perfect split (1 for a dense model). */
    public double expertShardImbalance() {
        return expertShards.imbalance();
    }

    public long generatedTokens() {
        return generatedTokens.get();
    }

    public double tokensPerSecond() {
        double s = (System.nanoTime() - startNanos) / 1e9;
        return s <= 0 ? 0 : generatedTokens.get() / s;
    }
}
