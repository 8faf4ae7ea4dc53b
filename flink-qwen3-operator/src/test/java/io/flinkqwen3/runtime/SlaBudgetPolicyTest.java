package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The SLA policy with an injected clock (nanoseconds passed in) and injected costs. */
class SlaBudgetPolicyTest {
    static final long SECOND = 1_000_000_000L;

    /** Costs as measured: {@code base + perSequence x batch} seconds per decode step, 2 ms per prompt token. */
    record Costs(double base, double perSequence, int queued, int active, int maxSequences, int batchLimit,
                 int thinkingBatchLimit) implements StepCosts {
        static Costs of(int queued, int active) {
            return new Costs(0.019, 0.001, queued, active, 32, 32, 32);
        }

        @Override
        public double decodeStepSeconds(int batchSize) {
            return base + perSequence * batchSize;
        }

        @Override
        public double prefillSecondsPerToken() {
            return 0.002;
        }
    }

    /** A request in the engine: submitted at 0 on the injected clock. */
    static final class Seq implements SlaBudgetPolicy.Sequence {
        final long deadline;
        final boolean adaptive;
        boolean thinking;
        int thinkingTokens;
        int limit;
        int answerLeft = 32;

        Seq(long deadline, boolean adaptive, boolean thinking, int thinkingTokens, int limit) {
            this.deadline = deadline;
            this.adaptive = adaptive;
            this.thinking = thinking;
            this.thinkingTokens = thinkingTokens;
            this.limit = limit;
        }

        static Seq thinker(double deadlineSeconds, int thinkingTokens) {
            return new Seq((long) (deadlineSeconds * SECOND), true, true, thinkingTokens, 4000);
        }

        static Seq answering(double deadlineSeconds) {
            return new Seq((long) (deadlineSeconds * SECOND), false, false, 0, 0);
        }

        boolean cut() {
            return limit <= thinkingTokens;
        }

        @Override public long deadlineNanos() { return deadline; }
        @Override public long submittedNanos() { return 0; }
        @Override public boolean adaptive() { return adaptive; }
        @Override public boolean thinking() { return thinking; }
        @Override public int thinkingTokens() { return thinkingTokens; }
        @Override public int thinkingLimit() { return limit; }
        @Override public int prefillLeft() { return 0; }
        @Override public int answerTokensLeft() { return answerLeft; }
        @Override public int plannedAnswerTokens() { return 32; }
        @Override public int maxThinkingTokens() { return 4000; }
        @Override public void limitThinking(int l) { limit = l; }
    }

    final SlaBudgetPolicy policy = new SlaBudgetPolicy();

    int budget(long slaMillis, int queued) {
        return policy.decide(slaMillis, 100, 4096, 32, null, null, Costs.of(queued, 0)).thinkingBudget();
    }

    @Test
    void tighterSlaNeverGivesALargerBudget() {
        int previous = Integer.MAX_VALUE;
        for (long sla = 120_000; sla >= 0; sla -= 250) {
            int b = budget(sla, 0);
            assertTrue(b <= previous, "SLA " + sla + " ms gave " + b + " > " + previous);
            previous = b;
        }
        assertTrue(budget(60_000, 0) > 800, "a generous SLA buys a long thought");
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
        for (int queued = 0; queued <= 28; queued += 4) {
            int b = budget(20_000, queued);
            assertTrue(b <= previous, "queue " + queued + " gave " + b);
            previous = b;
        }
        assertTrue(budget(20_000, 0) > budget(20_000, 28));
    }

    @Test
    void lateRecordsAreAnsweredWithoutThinkingAndFlagged() {
        var d = policy.decide(-5, 100, 512, 32, null, null, Costs.of(0, 0));
        assertEquals(0, d.thinkingBudget());
        assertTrue(d.alreadyLate());
    }

    @Test
    void forcedSettingsWin() {
        var costs = Costs.of(0, 0);
        assertEquals(0, policy.decide(60_000, 100, 512, 32, null, false, costs).thinkingBudget());
        assertEquals(77, policy.decide(10, 100, 512, 32, 77, null, costs).thinkingBudget());
        assertTrue(policy.decide(500, 100, 512, 32, null, true, costs).thinkingBudget() >= 1, "thinking forced on");
    }

    @Test
    void budgetNeverExceedsWhatMaxTokensLeavesForTheAnswer() {
        int b = policy.decide(600_000, 10, 200, 32, null, null, Costs.of(0, 0)).thinkingBudget();
        assertTrue(b > 0 && b <= 200 - 32 - 24, "budget " + b);
    }

    @Test
    void underOverloadNewcomersAnswerWithoutThinking() {
        // every slot taken and requests waiting for one: the queue cannot afford longer stays
        assertTrue(policy.decide(30_000, 100, 4096, 32, null, null, Costs.of(0, 31)).thinkingBudget() > 0);
        assertEquals(0, policy.decide(30_000, 100, 4096, 32, null, null, Costs.of(3, 32)).thinkingBudget());
        // the batch is as large as thinking may make it (the tightest SLA class needs the headroom)
        var slow = new Costs(0.019, 0.001, 0, 10, 32, 20, 10);
        assertEquals(0, policy.decide(30_000, 100, 4096, 32, null, null, slow).thinkingBudget());
        // a record that asks to think still does
        assertTrue(policy.decide(30_000, 100, 4096, 32, null, true, slow).thinkingBudget() >= 1);
    }

    @Test
    void aTightNewcomerWaitingForASlotShortensTheLatestRunningThought() {
        var costs = new Costs(0.019, 0.001, 1, 2, 2, 2, 2);
        var early = Seq.thinker(30, 100);
        var late = Seq.thinker(60, 100);
        policy.replan(0, List.of(early, late), List.of(), costs);
        assertTrue(!early.cut() && !late.cut() && late.limit > 1000, "alone, both keep long thoughts: " + late.limit);

        var loose = Seq.answering(120);
        policy.replan(0, List.of(early, late), List.of(loose), costs);
        assertTrue(!early.cut() && !late.cut(), "a newcomer with time to spare waits for a slot");

        var tight = Seq.answering(2);
        policy.replan(0, List.of(early, late), List.of(tight, loose), costs);
        assertTrue(late.cut(), "the thought with the latest deadline stops, so its slot frees in time");
        assertTrue(!early.cut(), "one slot is enough: the other thought goes on");
    }

    @Test
    void aBurstOfTightDeadlinesCutsLongThoughtsShort() {
        // steep costs: 10 ms per sequence in the batch
        var costs = new Costs(0.0, 0.010, 0, 10, 32, 32, 32);
        var thinker = Seq.thinker(60, 200);
        var plan = policy.replan(0, List.of(thinker), List.of(), costs);
        assertTrue(!thinker.cut() && plan.thinkingBatchLimit() == 32, "alone it thinks on: limit " + thinker.limit + ", " + plan);

        List<SlaBudgetPolicy.Sequence> batch = new ArrayList<>();
        for (int i = 0; i < 9; i++) {
            batch.add(Seq.answering(2)); // 33 steps at 100 ms would take 3.3 s: too slow for 2 s
        }
        batch.add(thinker);
        plan = policy.replan(0, batch, List.of(), costs);
        // a fresh 2 s request affords 70% of 2 s over 33 steps, 42 ms a step (4 sequences); thoughts may fill half of that (2)
        assertEquals(new SlaBudgetPolicy.Plan(4, 2), plan);
        assertTrue(thinker.cut(), "the long thought stops so the batch shrinks: limit " + thinker.limit);
    }

    @Test
    void aThoughtStopsWhereItsAnswerStillFits() {
        var costs = Costs.of(0, 1); // planned at 51 ms a step (the batch may grow to 32)
        var thinker = Seq.thinker(20, 0);
        int previousLeft = Integer.MAX_VALUE;
        for (long t = 0; !thinker.cut(); t += SECOND / 10) {
            thinker.thinkingTokens += 5;
            policy.replan(t, List.of(thinker), List.of(), costs);
            int left = thinker.limit - thinker.thinkingTokens;
            assertTrue(left <= previousLeft, "the limit only comes closer as the deadline does");
            previousLeft = left;
            assertTrue(t < 20 * SECOND, "never stopped");
        }
        // stopped once 20 s less the 3 s margin no longer hold the answer's 33 steps of 51 ms and the early-stop text
        assertTrue(thinker.thinkingTokens > 5 * 10 * 14, "stopped too early: " + thinker.thinkingTokens);
    }

    @Test
    void aRequestThatCannotMakeItStopsThinkingAtOnce() {
        var costs = Costs.of(0, 1);
        var hopeless = Seq.thinker(60, 300);
        // 59.5 s later: 0.5 s left minus the margin, less than its 32-token answer takes at 20 ms a step
        policy.replan(59_500_000_000L, List.of(hopeless), List.of(), costs);
        assertTrue(hopeless.cut(), "limit " + hopeless.limit + " after " + hopeless.thinkingTokens + " thinking tokens");
        assertTrue(policy.hopeless(hopeless, 60_500_000_000L, costs), "past its deadline");
        assertTrue(!policy.hopeless(Seq.answering(60), 0, costs));
    }

    @Test
    void fixedBudgetsAreNotTouched() {
        var fixed = new Seq(SECOND, false, true, 300, 1000); // a record's own budget, its deadline long lost
        policy.replan(0, List.of(fixed), List.of(), Costs.of(0, 1));
        assertEquals(1000, fixed.limit);
    }
}
