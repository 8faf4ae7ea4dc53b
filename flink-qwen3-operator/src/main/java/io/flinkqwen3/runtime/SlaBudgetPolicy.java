package io.flinkqwen3.runtime;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Thinking budgets that keep deadlines, decided twice:
 * <ul>
 *   <li>{@link #decide}, when a record arrives: whether it thinks at all (the template) and its first
 *       budget, from what is left of its SLA, the queue ahead, its prefill and a reserve for the
 *       answer. While requests wait for a batch slot, or the batch is already as large as thinking
 *       may make it, a newcomer answers without thinking.</li>
 *   <li>{@link #replan}, before every engine step: each running thought's limit, from its deadline,
 *       the batch it shares every step with and the measured step time at that batch size. A request
 *       that can no longer make its deadline stops thinking at once (Qwen's early-stop text goes in
 *       before the next step); when a waiting request would get its batch slot too late, or a burst
 *       makes the batch larger than the tightest SLA class can afford, the thoughts with the latest
 *       deadlines are cut short so that their sequences leave the batch.</li>
 * </ul>
 *
 * <p>The tightest SLA class seen in the last {@link #CLASS_MEMORY_SECONDS} sets two batch sizes (a
 * step time is the measured cost at a batch size): the <em>batch limit</em>, the largest batch whose
 * step time still lets a fresh request of that class answer in time (the engine admits no more, so
 * under overload the rest wait, earliest deadline first, and the tight class keeps its SLA), and the
 * <em>thinking limit</em>, the batch at half that step time: thoughts only fill the batch up to it,
 * which leaves room for the bursts of an open-loop arrival process.
 * Times are seconds on the caller's clock (nanoseconds in, injectable); costs come from
 * {@link StepCosts}, which the engine measures from its warm-up on. Only requests that let the
 * engine adapt their budget ({@link GenerationRequest#adaptiveBudget()}) are touched.
 */
public final class SlaBudgetPolicy {
    /** Decode steps kept for the answer after thinking when the caller names none. */
    public static final int DEFAULT_ANSWER_RESERVE_TOKENS = 32;
    /** Budgets below this are not worth thinking for: answer directly. */
    static final int MIN_USEFUL_BUDGET = 16;
    /** Tokens of Qwen's early-stop text (about 24 with the Qwen3 tokenizer), which a cut-off thought appends in one step. */
    static final int EARLY_STOP_TOKENS = 24;
    /** Fraction of each request's SLA kept as a margin against estimate errors and arrivals to come. */
    static final double SAFETY = 0.15;
    /**
     * Fraction of the tightest SLA a fresh request of that class must be able to answer in at the batch
     * limit: the rest covers the wait for a slot, prefill steps and the way through Kafka and Flink.
     */
    static final double BATCH_SHARE = 0.7;
    /** Thoughts fill the batch only up to the step time of this fraction of what the tightest class affords. */
    static final double THINKING_SHARE = 0.5;
    /** How long the tightest SLA class seen is protected after its last request. */
    static final double CLASS_MEMORY_SECONDS = 10;

    /** Step seconds a fresh request of the tightest recent SLA class affords, and when that class was last seen. */
    private double tightestStep = Double.POSITIVE_INFINITY;
    private long tightestSeenNanos;

    /** A request as the policy sees it: deadline, where its thought stands, what it still needs. */
    public interface Sequence {
        /** Deadline on the engine's nanosecond clock; Long.MAX_VALUE: none. */
        long deadlineNanos();

        long submittedNanos();

        /** Whether the policy may change its budget. */
        boolean adaptive();

        /** Still inside its think block. */
        boolean thinking();

        int thinkingTokens();

        /** Thinking tokens after which the early-stop text goes in (Integer.MAX_VALUE: none). */
        int thinkingLimit();

        /** Prompt tokens not yet prefilled. */
        int prefillLeft();

        /** Decode steps the answer still takes (planned, within its limits). */
        int answerTokensLeft();

        /** Decode steps its whole answer takes (planned): what a fresh request of its class needs after thinking. */
        int plannedAnswerTokens();

        /** The largest limit its max tokens leave room for. */
        int maxThinkingTokens();

        /** A limit at or below the thinking tokens so far stops the thought before the next step. */
        void limitThinking(int limit);
    }

    public record Decision(int thinkingBudget, boolean alreadyLate) {}

    /**
     * What a replan decided for the engine as a whole.
     *
     * @param batchLimit         sequences the engine should run at most in one step
     * @param thinkingBatchLimit newcomers think only while the batch stays at or below this size
     */
    public record Plan(int batchLimit, int thinkingBatchLimit) {}

    /**
     * The first budget of a record.
     *
     * @param remainingMillis     time until its deadline
     * @param promptTokens        tokens of its prompt
     * @param maxTokens           its generation limit (thinking plus answer)
     * @param answerReserveTokens decode steps kept for the answer
     * @param forcedBudget        the record's fixed budget, or null
     * @param forcedThinking      the record's thinking switch, or null
     */
    public Decision decide(long remainingMillis, int promptTokens, int maxTokens, int answerReserveTokens,
                           Integer forcedBudget, Boolean forcedThinking, StepCosts costs) {
        if (Boolean.FALSE.equals(forcedThinking)) {
            return new Decision(0, remainingMillis <= 0);
        }
        if (forcedBudget != null) {
            return new Decision(forcedBudget, remainingMillis <= 0);
        }
        if (remainingMillis <= 0) {
            return new Decision(0, true);
        }
        int batch = Math.min(costs.maxSequences(), costs.active() + costs.queued() + 1);
        double step = Math.max(costs.decodeStepSeconds(batch), costs.decodeStepSeconds(costs.thinkingBatchLimit()));
        double answerStep = Math.max(step, costs.decodeStepSeconds(costs.batchLimit()));
        double prefill = costs.prefillSecondsPerToken();
        boolean overloaded = costs.queued() > 0 && costs.active() >= costs.batchLimit() // they wait for a slot
                || costs.active() + costs.queued() + 1 > costs.thinkingBatchLimit();
        if (Double.isNaN(step) || Double.isNaN(prefill) || overloaded && forcedThinking == null) {
            return new Decision(0, false); // answer first: nothing measured yet, or the queue cannot take longer stays
        }
        int answer = Math.min(answerReserveTokens, maxTokens / 2);
        double seconds = remainingMillis / 1000.0 * (1 - SAFETY);
        // the queue ahead is prefilled before us (assume prompts like ours), then our own prompt; the
        // answer must fit even in the largest batch the engine runs, the thought at the pace thoughts may set
        seconds -= (costs.queued() + 1) * promptTokens * prefill + EARLY_STOP_TOKENS * prefill + (answer + 1) * answerStep;
        int budget = (int) Math.min(Math.floor(seconds / step), maxTokens - answer - EARLY_STOP_TOKENS);
        if (Boolean.TRUE.equals(forcedThinking)) {
            return new Decision(Math.max(budget, 1), false);
        }
        return new Decision(budget < MIN_USEFUL_BUDGET ? 0 : budget, false);
    }

    /**
     * Re-decides the thinking limit of every adaptive request before a step.
     *
     * @param nowNanos now, on the clock of the deadlines
     * @param running  the requests in the batch, earliest deadline first
     * @param waiting  the requests waiting for a batch slot, earliest deadline first
     * @return the batch limits for the engine and for {@link #decide}
     */
    public Plan replan(long nowNanos, List<? extends Sequence> running, List<? extends Sequence> waiting, StepCosts costs) {
        int slots = costs.maxSequences();
        double prefill = costs.prefillSecondsPerToken();
        if (Double.isNaN(costs.decodeStepSeconds(1)) || Double.isNaN(prefill)) {
            return new Plan(slots, slots);
        }
        // the tightest SLA class present, remembered for a while: a fresh request of it must still fit
        double tightest = Double.POSITIVE_INFINITY;
        for (List<? extends Sequence> list : List.of(running, waiting)) {
            for (Sequence s : list) {
                if (s.deadlineNanos() != Long.MAX_VALUE) {
                    double sla = Math.max(0, s.deadlineNanos() - s.submittedNanos()) / 1e9;
                    tightest = Math.min(tightest, sla * BATCH_SHARE / (s.plannedAnswerTokens() + 1.0));
                }
            }
        }
        if (tightest <= tightestStep || (nowNanos - tightestSeenNanos) / 1e9 > CLASS_MEMORY_SECONDS) {
            tightestStep = tightest;
            tightestSeenNanos = nowNanos;
        }
        int batchLimit = largestBatchWithin(tightestStep, slots, costs);
        int thinkingLimit = Math.min(batchLimit, largestBatchWithin(THINKING_SHARE * tightestStep, slots, costs));
        if (costs.decodeStepSeconds(1) > tightestStep) {
            batchLimit = slots; // a class that cannot make it even alone is no reason to shrink the batch
            thinkingLimit = slots;
        }
        // thoughts run at the step time of the batch thinking may grow to; answers must fit even in the largest batch
        int batch = Math.max(1, Math.min(batchLimit, running.size() + waiting.size()));
        double step = Math.max(costs.decodeStepSeconds(batch), costs.decodeStepSeconds(thinkingLimit));
        double answerStep = Math.max(step, costs.decodeStepSeconds(batchLimit));
        // 1. a batch larger than thinking may make it: the latest thoughts stop, so their sequences leave
        List<Sequence> latestFirst = new ArrayList<>(running);
        java.util.Collections.reverse(latestFirst);
        int excess = running.size() - thinkingLimit;
        for (Sequence s : latestFirst) {
            if (excess > 0 && cuttable(s)) {
                s.limitThinking(s.thinkingTokens());
                excess--;
            }
        }
        // 2. each thought within its own deadline at this step time
        for (Sequence s : running) {
            if (cuttable(s)) {
                limitByDeadline(s, secondsLeft(s, nowNanos, prefill), step, answerStep, prefill);
            }
        }
        // 3. waiting requests get their slots when running ones finish; cut the latest thoughts where a slot comes too late
        double[] slotFree = slotTimes(running, Math.min(slots, batchLimit), step);
        int slot = 0;
        for (Sequence w : waiting) {
            if (slot >= slotFree.length) {
                break;
            }
            double left = secondsLeft(w, nowNanos, prefill);
            if (left <= 0 || left == Double.POSITIVE_INFINITY) {
                continue; // hopeless requests queue behind the feasible ones; no deadline: no hurry
            }
            double startBy = left - minimumSteps(w) * step;
            while (slotFree[slot] > startBy && cutLatestThought(latestFirst, w.deadlineNanos(), step, startBy)) {
                slotFree = slotTimes(running, Math.min(slots, batchLimit), step);
            }
            if (w.adaptive() && w.thinking()) {
                limitByDeadline(w, left - Math.max(0, slotFree[slot]), step, answerStep, prefill);
            }
            slot++;
        }
        return new Plan(batchLimit, thinkingLimit);
    }

    /** The largest batch (at least 1, at most {@code slots}) whose measured step time is within {@code seconds}. */
    private static int largestBatchWithin(double seconds, int slots, StepCosts costs) {
        int b = slots;
        while (b > 1 && costs.decodeStepSeconds(b) > seconds) {
            b--;
        }
        return b;
    }

    /** True when the request cannot make its deadline even answering at once at this step time (it is served after the others). */
    public boolean hopeless(Sequence s, long nowNanos, StepCosts costs) {
        double step = costs.decodeStepSeconds(Math.min(costs.maxSequences(), costs.active() + 1));
        double prefill = costs.prefillSecondsPerToken();
        if (Double.isNaN(step) || Double.isNaN(prefill) || s.deadlineNanos() == Long.MAX_VALUE) {
            return false;
        }
        return (s.deadlineNanos() - nowNanos) / 1e9 < s.prefillLeft() * prefill + minimumSteps(s) * step;
    }

    private static boolean cuttable(Sequence s) {
        return s.adaptive() && s.thinking() && s.thinkingLimit() > s.thinkingTokens();
    }

    /** Seconds until the deadline, less the margin and the prompt still to prefill; +infinity without a deadline. */
    private static double secondsLeft(Sequence s, long nowNanos, double prefillSecondsPerToken) {
        if (s.deadlineNanos() == Long.MAX_VALUE) {
            return Double.POSITIVE_INFINITY;
        }
        double sla = Math.max(0, s.deadlineNanos() - s.submittedNanos()) / 1e9;
        return (s.deadlineNanos() - nowNanos) / 1e9 - SAFETY * sla - s.prefillLeft() * prefillSecondsPerToken;
    }

    /** Decode steps the request needs at the least: an adaptive thought cut now, a fixed one run to its limit, then the answer. */
    private static int minimumSteps(Sequence s) {
        if (!s.thinking()) {
            return Math.max(1, s.answerTokensLeft());
        }
        int thought = s.adaptive() || s.thinkingLimit() == Integer.MAX_VALUE ? 0 : Math.max(0, s.thinkingLimit() - s.thinkingTokens());
        return thought + 1 + s.answerTokensLeft();
    }

    /** Steps left for a request at its current limit. */
    private static long stepsLeft(Sequence s) {
        if (!s.thinking()) {
            return s.answerTokensLeft();
        }
        long thought = Math.min((long) s.maxThinkingTokens(), s.thinkingLimit()) - s.thinkingTokens();
        return Math.max(0, thought) + 1 + s.answerTokensLeft();
    }

    private static void limitByDeadline(Sequence s, double secondsLeft, double step, double answerStep, double prefill) {
        if (secondsLeft == Double.POSITIVE_INFINITY) {
            return;
        }
        double answer = (1 + s.answerTokensLeft()) * answerStep;
        double thinkingSteps = Math.floor((secondsLeft - EARLY_STOP_TOKENS * prefill - answer) / step);
        long limit = s.thinkingTokens() + (long) Math.max(0, thinkingSteps);
        s.limitThinking((int) Math.min(limit, s.maxThinkingTokens()));
    }

    /** Seconds from now until each of the batch's slots is free (0: free now), soonest first. */
    private static double[] slotTimes(List<? extends Sequence> running, int slots, double step) {
        double[] t = new double[Math.max(slots, running.size())];
        for (int i = 0; i < running.size(); i++) {
            t[i] = stepsLeft(running.get(i)) * step;
        }
        Arrays.sort(t);
        return t;
    }

    /**
     * Stops the thought with the latest deadline after {@code deadline} whose sequence, cut now, leaves
     * the batch by {@code by} seconds; false when none would.
     */
    private static boolean cutLatestThought(List<Sequence> latestFirst, long deadline, double step, double by) {
        for (Sequence s : latestFirst) {
            if (s.deadlineNanos() > deadline && cuttable(s) && (s.answerTokensLeft() + 1) * step <= by) {
                s.limitThinking(s.thinkingTokens());
                return true;
            }
        }
        return false;
    }
}
