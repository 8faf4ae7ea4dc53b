package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.runtime.StepCosts;
import org.junit.jupiter.api.Test;

class SlaBudgetPolicyTest {
    /** A cost model with fixed measurements: 20 ms per decode step (+1 ms per extra sequence), 2 ms per prompt token. */
    record FixedCosts(int queued, int active) implements StepCosts {
        @Override
        public double decodeStepSeconds(int batchSize) {
            return 0.020 + 0.001 * (batchSize - 1);
        }

        @Override
        public double prefillSecondsPerToken() {
            return 0.002;
        }
    }

    final SlaBudgetPolicy policy = SlaBudgetPolicy.defaults(32);

    int budget(long slaMillis, int queued) {
        return policy.decide(slaMillis, 100, 4096, null, null, new FixedCosts(queued, 0)).thinkingBudget();
    }

    @Test
    void tighterSlaNeverGivesALargerBudget() {
        int previous = Integer.MAX_VALUE;
        for (long sla = 120_000; sla >= 0; sla -= 250) {
            int b = budget(sla, 0);
            assertTrue(b <= previous, "SLA " + sla + " ms gave " + b + " > " + previous);
            previous = b;
        }
        assertTrue(budget(60_000, 0) > 1000, "a generous SLA buys a long thought");
    }

    @Test
    void budgetIsZeroWhenNothingFits() {
        // prefill 0.2 s + answer reserve 32 x 20 ms = 0.64 s + early-stop text: 1 s leaves less than 16 steps
        assertEquals(0, budget(1000, 0));
        assertEquals(0, budget(200, 0));
    }

    @Test
    void budgetShrinksAsTheQueueGrows() {
        int previous = Integer.MAX_VALUE;
        for (int queued = 0; queued <= 64; queued += 4) {
            int b = budget(20_000, queued);
            assertTrue(b <= previous, "queue " + queued + " gave " + b);
            previous = b;
        }
        assertTrue(budget(20_000, 0) > budget(20_000, 32));
    }

    @Test
    void lateRecordsAreAnsweredWithoutThinkingAndFlagged() {
        var d = policy.decide(-5, 100, 512, null, null, new FixedCosts(0, 0));
        assertEquals(0, d.thinkingBudget());
        assertTrue(d.alreadyLate());
    }

    @Test
    void forcedSettingsWin() {
        var costs = new FixedCosts(0, 0);
        assertEquals(0, policy.decide(60_000, 100, 512, null, false, costs).thinkingBudget());
        assertEquals(77, policy.decide(10, 100, 512, 77, null, costs).thinkingBudget());
        assertTrue(policy.decide(500, 100, 512, null, true, costs).thinkingBudget() >= 1, "thinking forced on");
    }

    @Test
    void budgetNeverExceedsWhatMaxTokensLeavesForTheAnswer() {
        int b = policy.decide(600_000, 10, 200, null, null, new FixedCosts(0, 0)).thinkingBudget();
        assertTrue(b > 0 && b <= 200 - 32 - 24, "budget " + b);
    }
}
