package io.flinkqwen3.runtime;

import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Which shard owns which expert of one MoE layer, planned from the measured routing load. The
 * experts of a {@link SparseMoeBlock} are split into S shards (by default one per kernel thread); in a
 * forward pass one worker runs all of a shard's experts for every token routed to them, so the
 * busiest shard sets the layer's time (a worker done early only takes what the others have not started). The load of an expert is an exponential moving average of the
 * tokens routed to it per step; every {@link #REPLAN_EVERY} steps the experts are re-assigned by
 * greedy longest-processing-time (heaviest expert first, onto the least loaded shard) and the new
 * plan is taken when it is measurably better. The first plan balances the count of experts.
 *
 * <p>Routing in trained Qwen3-MoE models is skewed per layer despite the global-batch load-balancing
 * loss (Qwen3 technical report, section 2), so an even count of experts is not an even load.
 *
 * <p>Not thread-safe: one forward pass at a time, like the model it belongs to.
 */
final class ExpertShards {
    private static final Logger LOG = LoggerFactory.getLogger(ExpertShards.class);
    /** Weight of the newest step in the moving average of tokens per expert (about the last 100 steps count). */
    static final double LOAD_DECAY = 0.01;
    /** Steps between two plannings. */
    static final int REPLAN_EVERY = 100;
    /** A new plan replaces the current one only when it lowers the imbalance by more than this (no churn on noise). */
    static final double MIN_GAIN = 0.05;

    /**
     * Experts per shard (each list heaviest first, the order a worker runs them) and the load each
     * shard carries under the loads it was planned with.
     */
    record Plan(int[][] experts, double[] load) {
        /** Greedy longest-processing-time: heaviest expert first onto the least loaded shard (then the one with fewer experts, then the lower index). */
        static Plan balance(double[] expertLoad, int shards) {
            Integer[] order = new Integer[expertLoad.length];
            Arrays.setAll(order, e -> e);
            Arrays.sort(order, (a, b) -> expertLoad[a] != expertLoad[b] ? Double.compare(expertLoad[b], expertLoad[a]) : a - b);
            double[] load = new double[shards];
            int[] count = new int[shards], shardOf = new int[order.length];
            for (int e : order) {
                int best = 0;
                for (int s = 1; s < shards; s++) {
                    if (load[s] < load[best] || load[s] == load[best] && count[s] < count[best]) {
                        best = s;
                    }
                }
                shardOf[e] = best;
                count[best]++;
                load[best] += expertLoad[e];
            }
            int[][] experts = new int[shards][];
            Arrays.setAll(experts, s -> new int[count[s]]);
            int[] filled = new int[shards];
            for (int e : order) { // heaviest first within each shard too
                experts[shardOf[e]][filled[shardOf[e]]++] = e;
            }
            return new Plan(experts, load);
        }

        int shards() {
            return experts.length;
        }

        /** The same assignment, its shard loads recomputed for other expert loads. */
        Plan reweighed(double[] expertLoad) {
            double[] load = new double[experts.length];
            for (int s = 0; s < experts.length; s++) {
                for (int e : experts[s]) {
                    load[s] += expertLoad[e];
                }
            }
            return new Plan(experts, load);
        }

        /** Max over mean of the shard loads: 1 is even, S is everything on one shard. */
        double imbalance() {
            double max = 0, sum = 0;
            for (double l : load) {
                max = Math.max(max, l);
                sum += l;
            }
            return sum == 0 ? 1 : max / (sum / load.length);
        }
    }

    private final int layer;
    /** Moving average of tokens routed per step, per expert. */
    private final double[] expertLoad;
    private Plan plan;
    private long steps;
    /** Tokens routed to each shard in the last step. */
    private final long[] lastTokens;

    ExpertShards(int layer, int experts, int shards) {
        if (shards < 1) {
            throw new IllegalArgumentException("expert shards must be >= 1, got " + shards);
        }
        this.layer = layer;
        this.expertLoad = new double[experts];
        this.plan = Plan.balance(expertLoad, shards);
        this.lastTokens = new long[shards];
    }

    /**
     * Records one step's routing (tokens per expert) and returns the plan to run it with; every
     * {@link #REPLAN_EVERY} steps re-plans for the steps after it.
     */
    Plan route(int[] tokensPerExpert) {
        Plan current = plan;
        for (int s = 0; s < current.shards(); s++) {
            long tokens = 0;
            for (int e : current.experts()[s]) {
                tokens += tokensPerExpert[e];
            }
            lastTokens[s] = tokens;
        }
        for (int e = 0; e < expertLoad.length; e++) {
            expertLoad[e] += LOAD_DECAY * (tokensPerExpert[e] - expertLoad[e]);
        }
        if (++steps % REPLAN_EVERY == 0) {
            replan();
        }
        return current;
    }

    private void replan() {
        Plan before = plan.reweighed(expertLoad), next = Plan.balance(expertLoad, plan.shards());
        if (before.imbalance() - next.imbalance() <= MIN_GAIN) {
            return;
        }
        plan = next;
        LOG.info(String.format("MoE layer %d, step %d: %d experts re-planned over %d shards: experts per shard %s, "
                        + "tokens per step per shard (moving average) %s, imbalance %.3f (the plan before: %.3f)", layer, steps,
                expertLoad.length, next.shards(), Arrays.toString(Arrays.stream(next.experts()).mapToInt(a -> a.length).toArray()),
                Arrays.toString(Arrays.stream(next.load()).map(l -> Math.round(l * 100) / 100.0).toArray()),
                next.imbalance(), before.imbalance()));
        if (LOG.isDebugEnabled()) {
            for (int s = 0; s < next.shards(); s++) {
                LOG.debug("MoE layer {} shard {}: experts {}", layer, s, Arrays.toString(next.experts()[s]));
            }
        }
    }

    Plan plan() {
        return plan;
    }

    /** Tokens routed to each shard in the last step. */
    ExpertShardLoad lastStep() {
        return ExpertShardLoad.ofLayer(lastTokens);
    }
}
