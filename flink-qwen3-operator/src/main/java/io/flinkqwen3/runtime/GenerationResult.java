package io.flinkqwen3.runtime;

/**
 * The outcome of a request. reasoning is the text of the think block (without the tags), answer
 * the text after the last {@code </think>}. Token counts: prompt, thinking (everything up to and
 * including {@code </think>}, early-stop text included) and answer (after it, end token excluded).
 */
public record GenerationResult(
        String answer,
        String reasoning,
        int promptTokens,
        int thinkingTokens,
        int answerTokens,
        FinishReason finishReason,
        boolean budgetExhausted,
        int thinkingBudget,
        int[] outputTokens) {}
