package io.flinkqwen3.runtime;

import java.util.HashSet;
import java.util.List;

/**
 * The limits of a classification request's labels ({@link GenerationRequest#labels()}): between
 * {@link #MIN} and {@link #MAX} distinct, non-blank strings of at most {@link #MAX_CHARS} characters;
 * the engine also refuses a label of more than {@link #MAX_TOKENS} tokens. Every label costs a
 * batch row per token after its first, so the limits keep one request's scoring to a few steps.
 */
public final class Labels {
    public static final int MIN = 2;
    public static final int MAX = 512;
    public static final int MAX_CHARS = 256;
    public static final int MAX_TOKENS = 32;

    private Labels() {}

    /** The labels as an immutable list; IllegalArgumentException naming the first label that breaks a limit. */
    public static List<String> validate(List<String> labels) {
        var seen = new HashSet<String>();
        for (int i = 0; i < labels.size(); i++) {
            String label = labels.get(i);
            if (label == null || label.isBlank()) {
                throw new IllegalArgumentException("labels[" + i + "] is " + (label == null ? "null" : label.isEmpty() ? "empty"
                        : "blank (only whitespace)"));
            }
            if (label.length() > MAX_CHARS) {
                throw new IllegalArgumentException("labels[" + i + "] has " + label.length() + " characters, at most "
                        + MAX_CHARS + " allowed: '" + label.substring(0, 40) + "...'");
            }
            if (!seen.add(label)) {
                throw new IllegalArgumentException("labels[" + i + "] '" + label + "' is a duplicate");
            }
        }
        if (labels.size() < MIN || labels.size() > MAX) {
            throw new IllegalArgumentException("labels: between " + MIN + " and " + MAX + " labels, got " + labels.size());
        }
        return List.copyOf(labels);
    }
}
