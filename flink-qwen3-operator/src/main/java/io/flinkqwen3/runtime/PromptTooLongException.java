package io.flinkqwen3.runtime;

/** The prompt does not leave room for a single generated token within the context length. */
public final class PromptTooLongException extends IllegalArgumentException {
    public PromptTooLongException(int promptTokens, int contextLength) {
        super("prompt has " + promptTokens + " tokens, the context length is " + contextLength
                + ": shorten the prompt or raise the context length");
    }
}
