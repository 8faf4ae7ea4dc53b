package io.flinkqwen3.flink;

import io.flinkqwen3.runtime.StepCosts;
import java.io.Serializable;

/**
 * Chooses a record's thinking budget from what is left of its SLA and what the engine measured:
 * time per decode step at the expected batch size and prefill time per token. The time left after
 * the queue ahead, this prompt's prefill, the early-stop text and a reserve for the answer is spent
 * on thinking. Budget 0 (non-thinking) when nothing useful fits; a record already late is answered
 * without thinking and flagged.
 */
public final class SlaBudgetPolicy implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Budgets below this are not worth thinking for: answer directly. */
    static final int MIN_USEFUL_BUDGET = 16;
    /** Tokens of Qwen's early-stop text, which a cut-off thought appends. */
    static final int EARLY_STOP_TOKENS = 24;
    /** Fraction of the remaining time kept as a safety margin against estimate errors. */
    static final double SAFETY = 0.15;

    /** Costs assumed before the engine has measured anything (about a 0.6B model on 2 cores). */
    private final double fallbackStepSeconds;
    private final double fallbackPrefillSecondsPerToken;
    private final int answerReserveTokens;

    public SlaBudgetPolicy(int answerReserveTokens, double fallbackStepSeconds, double fallbackPrefillSecondsPerToken) {
        this.answerReserveTokens = answerReserveTokens;
        this.fallbackStepSeconds = fallbackStepSeconds;
        this.fallbackPrefillSecondsPerToken = fallbackPrefillSecondsPerToken;
    }

    public static SlaBudgetPolicy defaults(int answerReserveTokens) {
        return new SlaBudgetPolicy(answerReserveTokens, 0.05, 0.005);
    }

    public record Decision(int thinkingBudget, boolean alreadyLate) {}

    /**
     * @param remainingMillis  time until the record's deadline
     * @param promptTokens     tokens of its prompt
     * @param maxTokens        its generation limit (thinking plus answer)
     * @param forcedBudget     the record's fixed budget, or null
     * @param forcedThinking   the record's thinking switch, or null
     */
    public Decision decide(long remainingMillis, int promptTokens, int maxTokens, Integer forcedBudget,
                           Boolean forcedThinking, StepCosts costs) {
        if (Boolean.FALSE.equals(forcedThinking)) {
            return new Decision(0, remainingMillis <= 0);
        }
        if (forcedBudget != null) {
            return new Decision(forcedBudget, remainingMillis <= 0);
        }
        if (remainingMillis <= 0) {
            return new Decision(0, true);
        }
        int batch = costs.active() + costs.queued() + 1;
        double step = orElse(costs.decodeStepSeconds(batch), fallbackStepSeconds);
        double prefill = orElse(costs.prefillSecondsPerToken(), fallbackPrefillSecondsPerToken);
        double seconds = remainingMillis / 1000.0 * (1 - SAFETY);
        // the queue ahead is prefilled before us (assume prompts like ours), then our own prompt
        seconds -= (costs.queued() + 1) * promptTokens * prefill;
        seconds -= EARLY_STOP_TOKENS * prefill + Math.min(answerReserveTokens, maxTokens) * step;
        int budget = (int) Math.floor(seconds / step);
        budget = Math.min(budget, maxTokens - Math.min(answerReserveTokens, maxTokens / 2) - EARLY_STOP_TOKENS);
        if (Boolean.TRUE.equals(forcedThinking)) {
            return new Decision(Math.max(budget, 1), false);
        }
        return new Decision(budget < MIN_USEFUL_BUDGET ? 0 : budget, false);
    }

    private static double orElse(double measured, double fallback) {
        return Double.isNaN(measured) || measured <= 0 ? fallback : measured;
    }
}
