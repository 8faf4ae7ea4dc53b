package io.flinkqwen3.runtime;

/** Why generation ended. */
public enum FinishReason {
    /** An end-of-turn token or a stop string. */
    STOP,
    /** max tokens or the context length was reached. */
    LENGTH,
    /** The thinking budget ran out, the early-stop text was inserted, and the answer then ended normally. */
    BUDGET;

    public String wireName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
