package io.flinkqwen3.runtime;

import java.util.Arrays;

/**
 * How routed tokens fell on the expert shards of a {@link SparseMoeBlock} ({@link ExpertShards}), summed
 * over the MoE layers of one forward pass or more. Each layer waits for its busiest shard, so
 * {@link #imbalance()} bounds the time the shards took relative to a perfect split, in routed tokens
 * (a worker done early takes experts the others have not started, which narrows the gap).
 *
 * @param tokensPerShard tokens routed to shard s, summed over layers (shard s of each layer owns other experts)
 * @param busiest        the busiest shard's tokens, summed over layers
 */
public record ExpertShardLoad(long[] tokensPerShard, long busiest) {
    /** No MoE layer ran. */
    public static final ExpertShardLoad NONE = new ExpertShardLoad(new long[0], 0);

    public ExpertShardLoad {
        tokensPerShard = tokensPerShard.clone();
    }

    /** One layer's tokens per shard. */
    static ExpertShardLoad ofLayer(long[] tokensPerShard) {
        return new ExpertShardLoad(tokensPerShard, Arrays.stream(tokensPerShard).max().orElse(0));
    }

    /** The sum of both loads (of other layers or steps); shard counts must agree unless one is {@link #NONE}. */
    public ExpertShardLoad plus(ExpertShardLoad other) {
        if (tokensPerShard.length == 0) {
            return other;
        }
        if (other.tokensPerShard.length == 0) {
            return this;
        }
        long[] sum = tokensPerShard.clone();
        Arrays.setAll(sum, s -> sum[s] + other.tokensPerShard[s]);
        return new ExpertShardLoad(sum, busiest + other.busiest);
    }

    @Override
    public long[] tokensPerShard() {
        return tokensPerShard.clone();
    }

    /** Busiest shard over the mean shard: 1 is an even split, the shard count is all on one shard (1 when nothing was routed). */
    public double imbalance() {
        long total = Arrays.stream(tokensPerShard).sum();
        return total == 0 ? 1 : (double) busiest * tokensPerShard.length / total;
    }

    @Override
    public String toString() {
        return String.format("tokens per shard %s, imbalance %.3f", Arrays.toString(tokensPerShard), imbalance());
    }
}
