package io.flinkqwen3.runtime;

/** The prompt does not leave room for a single generated token within the context length. */
public final class PromptTooLongException extends IllegalArgumentException {
    public PromptTooLongException(int promptTokens, int contextLength) {
        super("prompt has " + promptTokens + " tokens, the context length is " + contextLength
                + ": shorten the prompt or raise the context length");
    }

    private PromptTooLongException(String message) {
        super(message);
    }

    /**
     * A text prompt found too long before it was fully tokenized: more than maxTokens tokens, known
     * from its length alone (byLength) or after tokenizing maxTokens of it.
     */
    static PromptTooLongException counted(int chars, boolean chatTemplate, int maxTokens, int contextLength, boolean byLength) {
        return new PromptTooLongException("prompt has more than " + maxTokens + " tokens (" + chars + " characters"
                + (chatTemplate ? " with the chat template" : "") + ": "
                + (byLength ? "too long for " + maxTokens + " tokens of any text, not tokenized" : "tokenizing stopped there")
                + "), the context length is " + contextLength + ": shorten the prompt or raise the context length");
    }
}
