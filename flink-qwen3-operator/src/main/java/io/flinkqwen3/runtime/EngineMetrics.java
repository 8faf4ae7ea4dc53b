package io.flinkqwen3.runtime;

import java.util.concurrent.atomic.AtomicLong;

/**
 * What a scheduler needs to know about the engine: measured seconds per decode step by batch size
 * (exponential moving average of whole steps, sampling included; the engine's warm-up measures two
 * sizes before the first request), prefill seconds per token, queue length, tokens/s; for MoE models
 * how the last step's routed tokens fell on the expert shards; the KV cache's blocks in use and
 * prefix-cache hit rate.
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
    private final int maxSequences;
    private volatile SlaBudgetPolicy.Plan plan;
    private volatile ExpertShardLoad expertShards = ExpertShardLoad.NONE;
    private volatile KvBlockPool kvCache;

    EngineMetrics(int maxSequences) {
        this.maxSequences = maxSequences;
        this.plan = new SlaBudgetPolicy.Plan(maxSequences, maxSequences);
    }

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

    synchronized void forgetStepCosts() {
        java.util.Arrays.fill(stepSeconds, 0);
        prefillSecondsPerToken = Double.NaN;
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

    /** The most KV cache blocks in use at once since the engine started. */
    public int kvBlocksInUsePeak() {
        return kvCache == null ? 0 : kvCache.peakBlocksInUse();
    }

    /** Bytes of one KV cache block ({@link KvBlockPool#BLOCK_TOKENS} positions, all layers' keys and values). */
    public long kvBlockBytes() {
        return kvCache == null ? 0 : kvCache.blockBytes();
    }

    /** Prompt tokens looked up in the prefix cache since the engine started (the hit rate's denominator). */
    public long prefixCacheLookedUpTokens() {
        return kvCache == null ? 0 : kvCache.lookedUpTokens();
    }

    /** KV cache blocks in all (the kv-cache-memory budget in blocks of {@link KvBlockPool#BLOCK_TOKENS} positions). */
    public int kvBlocks() {
        return kvCache == null ? 0 : kvCache.blocks();
    }

    void recordQueue(int queued, int active) {
        this.queued = queued;
        this.active = active;
    }

    void recordPlan(SlaBudgetPolicy.Plan plan) {
        this.plan = plan;
    }

    /**
     * Seconds per decode step at this batch size: measured; else on the line through the nearest
     * measured sizes below and above it (beyond the largest, the line through the two largest, never
     * below the largest's time); a single measured size stands for all; NaN before any.
     */
    @Override
    public synchronized double decodeStepSeconds(int batchSize) {
        int b = Math.max(1, Math.min(batchSize, MAX_TRACKED_BATCH));
        if (stepSeconds[b] > 0) {
            return stepSeconds[b];
        }
        int below = b - 1, above = b + 1;
        while (below >= 1 && stepSeconds[below] == 0) {
            below--;
        }
        while (above <= MAX_TRACKED_BATCH && stepSeconds[above] == 0) {
            above++;
        }
        if (below >= 1 && above <= MAX_TRACKED_BATCH) {
            return stepSeconds[below] + (stepSeconds[above] - stepSeconds[below]) * (b - below) / (above - below);
        }
        if (below < 1 && above > MAX_TRACKED_BATCH) {
            return Double.NaN;
        }
        if (below < 1) {
            return stepSeconds[above]; // a smaller batch costs at most as much
        }
        int next = below - 1;
        while (next >= 1 && stepSeconds[next] == 0) {
            next--;
        }
        if (next < 1) {
            return stepSeconds[below];
        }
        double perSequence = Math.max(0, (stepSeconds[below] - stepSeconds[next]) / (below - next));
        return stepSeconds[below] + perSequence * (b - below);
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

    @Override
    public int maxSequences() {
        return maxSequences;
    }

    @Override
    public int batchLimit() {
        return plan.batchLimit();
    }

    @Override
    public int thinkingBatchLimit() {
        return plan.thinkingBatchLimit();
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
