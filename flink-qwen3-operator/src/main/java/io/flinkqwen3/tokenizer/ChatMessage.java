package io.flinkqwen3.tokenizer;

/** One chat turn. {@code reasoningContent} is optional; null means "take it from a think block in content". */
public record ChatMessage(String role, String content, String reasoningContent) {
    public ChatMessage {
        if (role == null || role.isBlank()) {
            throw new IllegalArgumentException("chat message needs a role");
        }
        content = content == null ? "" : content;
    }

    public ChatMessage(String role, String content) {
        this(role, content, null);
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }
}
