package io.flinkqwen3.flink;

import java.util.Objects;

/** One turn of a conversation in a {@link PromptRecord}. A Flink POJO. */
public class ChatTurn {
    public String role;
    public String content;

    public ChatTurn() {}

    public ChatTurn(String role, String content) {
        this.role = role;
        this.content = content;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ChatTurn t && Objects.equals(role, t.role) && Objects.equals(content, t.content);
    }

    @Override
    public int hashCode() {
        return Objects.hash(role, content);
    }
}
