package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The expert shard planner: even by count at first, then balanced by the measured routing load. */
class ExpertShardsTest {
    /** Every expert on exactly one shard. */
    private static void assertPartition(ExpertShards.Plan plan, int experts) {
        int[] all = Arrays.stream(plan.experts()).flatMapToInt(Arrays::stream).sorted().toArray();
        assertArrayEquals(IntStream.range(0, experts).toArray(), all);
    }

    /** Tokens per step skewed like a Zipf law: expert e gets about 64 / (e + 1). */
    private static int[] zipf(int experts) {
        int[] tokens = new int[experts];
        Arrays.setAll(tokens, e -> Math.round(64f / (e + 1)));
        return tokens;
    }

    @ParameterizedTest
    @CsvSource({"128, 1", "128, 2", "128, 3", "128, 16", "8, 8", "8, 16"})
    void theFirstPlanSplitsTheExpertsEvenlyByCount(int experts, int shards) {
        var plan = new ExpertShards(0, experts, shards).plan();
        assertEquals(shards, plan.shards());
        assertPartition(plan, experts);
        for (int[] shard : plan.experts()) {
            assertTrue(shard.length == experts / shards || shard.length == (experts + shards - 1) / shards,
                    Arrays.toString(Arrays.stream(plan.experts()).mapToInt(a -> a.length).toArray()));
        }
    }

    @Test
    void greedyPlanningBalancesASkewedLoadThatAnEvenCountDoesNot() {
        int experts = 128, shards = 4;
        double[] load = Arrays.stream(zipf(experts)).asDoubleStream().toArray();
        var byCount = new ExpertShards(0, experts, shards).plan().reweighed(load);
        var balanced = ExpertShards.Plan.balance(load, shards);
        assertPartition(balanced, experts);
        assertTrue(byCount.imbalance() > 1.3, "an even count is uneven in load: " + byCount.imbalance());
        assertTrue(balanced.imbalance() < 1.02, "planned by load: " + balanced.imbalance());
        assertEquals(Arrays.stream(load).sum(), Arrays.stream(balanced.load()).sum(), 1e-9);
    }

    @Test
    void routingIsMeasuredAndTheNextPlanFollowsIt() {
        int experts = 128, shards = 2;
        var shardsOfLayer = new ExpertShards(3, experts, shards);
        int[] tokens = zipf(experts);
        var first = shardsOfLayer.plan();
        for (int step = 1; step < ExpertShards.REPLAN_EVERY; step++) {
            assertSame(first, shardsOfLayer.route(tokens));
        }
        // expert 0, 2, 4, ... on shard 0: the skew puts most tokens there
        var skewed = shardsOfLayer.lastStep();
        assertEquals(Arrays.stream(tokens).sum(), Arrays.stream(skewed.tokensPerShard()).sum());
        assertTrue(skewed.imbalance() > 1.1, skewed.toString());

        assertSame(first, shardsOfLayer.route(tokens), "the step that re-plans still runs with the plan it started with");
        var next = shardsOfLayer.plan();
        assertPartition(next, experts);
        shardsOfLayer.route(tokens);
        var balanced = shardsOfLayer.lastStep();
        assertTrue(balanced.imbalance() < 1.02, "after re-planning: " + balanced);
    }

    @Test
    void anEvenLoadKeepsThePlan() {
        var shardsOfLayer = new ExpertShards(0, 128, 2);
        var first = shardsOfLayer.plan();
        int[] even = new int[128];
        Arrays.fill(even, 1);
        for (int step = 0; step < 3 * ExpertShards.REPLAN_EVERY; step++) {
            shardsOfLayer.route(even);
        }
        assertSame(first, shardsOfLayer.plan());
        assertEquals(1.0, shardsOfLayer.lastStep().imbalance(), 1e-9);
    }

    @Test
    void moreShardsThanExpertsLeavesSomeEmpty() {
        var shardsOfLayer = new ExpertShards(0, 8, 16);
        int[] tokens = {5, 0, 1, 0, 0, 3, 0, 7};
        for (int step = 0; step <= ExpertShards.REPLAN_EVERY; step++) {
            shardsOfLayer.route(tokens);
        }
        var plan = shardsOfLayer.plan();
        assertPartition(plan, 8);
        assertEquals(16, plan.shards());
        var load = shardsOfLayer.lastStep();
        assertEquals(16, load.tokensPerShard().length);
        assertEquals(16, Arrays.stream(load.tokensPerShard()).sum());
        assertEquals(7 * 16 / 16.0, load.imbalance(), 1e-9, "the busiest shard is the one with expert 7 alone");
    }

    @Test
    void shardCountsOutsideTheRangeAreRefused() {
        var options = EngineOptions.defaults();
        assertEquals(Qwen3Model.MAX_EXPERT_SHARDS, options.withExpertShards(Qwen3Model.MAX_EXPERT_SHARDS).expertShards());
        assertThrows(IllegalArgumentException.class, () -> options.withExpertShards(-1));
        assertThrows(IllegalArgumentException.class, () -> options.withExpertShards(Qwen3Model.MAX_EXPERT_SHARDS + 1));
    }

    @Test
    void loadsAddUpOverLayersAndSteps() {
        var a = ExpertShardLoad.ofLayer(new long[] {6, 2});
        var b = ExpertShardLoad.ofLayer(new long[] {4, 4});
        var sum = ExpertShardLoad.NONE.plus(a).plus(b);
        assertArrayEquals(new long[] {10, 6}, sum.tokensPerShard());
        assertEquals(10, sum.busiest());
        assertEquals(10 * 2 / 16.0, sum.imbalance(), 1e-12);
        assertEquals(1.0, ExpertShardLoad.NONE.imbalance());
    }
}
