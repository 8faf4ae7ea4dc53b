package io.flinkqwen3.flink;

import com.fasterxml.jackson.databind.annotation.JsonDeserialize;
import java.util.List;
import java.util.Objects;

/**
 * One turn of a conversation in a {@link PromptRecord}. A Flink POJO. {@code reasoningContent}
 * (assistant turns, optional) is their thinking, rendered as the chat template does;
 * {@code toolCalls} (assistant turns, optional) are the calls it made, each as JSON text (JSON
 * records may give the objects themselves), e.g.
 * {@code {"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}}.
 */
public class ChatTurn {
    public String role;
    public String content;
    public String reasoningContent;
    @JsonDeserialize(contentUsing = JsonText.class)
    public List<String> toolCalls;

    public ChatTurn() {}

    public ChatTurn(String role, String content) {
        this.role = role;
        this.content = content;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ChatTurn t && Objects.equals(role, t.role) && Objects.equals(content, t.content)
                && Objects.equals(reasoningContent, t.reasoningContent) && Objects.equals(toolCalls, t.toolCalls);
    }

    @Override
    public int hashCode() {
        return Objects.hash(role, content);
    }
}
