package io.flinkqwen3.runtime;

/**
 * The outcome of a request. reasoning is the text of the think block (without the tags), answer
 * the text after the last {@code </think>}. Token counts: prompt, thinking (everything up to and
 * including {@code </think>}, early-stop text included) and answer (after it, end token excluded).
 *
 * <p>For a request with labels ({@link GenerationRequest#classifies()}): label is the most probable
 * label (the first of equals), also given as the answer; labelProbabilities maps every label, in
 * the request's order, to its probability (they sum to 1); answerTokens is 0. Both are null for free
 * generation.
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
        int[] outputTokens,
        String label,
        java.util.Map<String, Double> labelProbabilities) {
    /** The result of a free generation (no labels). */
    public GenerationResult(String answer, String reasoning, int promptTokens, int thinkingTokens, int answerTokens,
                            FinishReason finishReason, boolean budgetExhausted, int thinkingBudget, int[] outputTokens) {
        this(answer, reasoning, promptTokens, thinkingTokens, answerTokens, finishReason, budgetExhausted, thinkingBudget,
                outputTokens, null, null);
    }
}
