package io.flinkqwen3.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * One chat turn. {@code reasoningContent} is optional; null means "take it from a think block in
 * content". {@code toolCalls} (assistant turns) are the calls as Qwen's template reads them: each
 * a JSON object {@code {"name": ..., "arguments": ...}}, optionally wrapped as
 * {@code {"type": "function", "function": {...}}} (the OpenAI form); arguments a JSON object or a
 * string that is used verbatim. Null content is empty content.
 */
public record ChatMessage(String role, String content, String reasoningContent, List<JsonNode> toolCalls) {
    public ChatMessage {
        if (role == null || role.isBlank()) {
            throw new IllegalArgumentException("chat message needs a role");
        }
        content = content == null ? "" : content;
        toolCalls = toolCalls == null ? List.of() : List.copyOf(toolCalls);
    }

    public ChatMessage(String role, String content, String reasoningContent) {
        this(role, content, reasoningContent, List.of());
    }

    public ChatMessage(String role, String content) {
        this(role, content, null);
    }

    /**
     * A message as OpenAI-style chat APIs and Hugging Face templates take it: {@code role},
     * {@code content} (string or null), optional {@code reasoning_content} (string or null) and
     * {@code tool_calls} (a list of objects). Other fields are ignored, as the template ignores
     * them. Throws IllegalArgumentException naming the field ({@code where}, e.g. "messages[2]").
     */
    public static ChatMessage fromJson(JsonNode m, String where) {
        if (m == null || !m.isObject()) {
            throw new IllegalArgumentException(where + " is " + m + ", expected an object with \"role\" and \"content\"");
        }
        JsonNode role = m.path("role");
        if (!role.isTextual() || role.textValue().isBlank()) {
            throw new IllegalArgumentException(where + ".role is " + (role.isMissingNode() ? "missing" : role) + ", expected a string");
        }
        List<JsonNode> calls = new java.util.ArrayList<>();
        JsonNode list = m.path("tool_calls");
        if (!list.isMissingNode() && !list.isNull()) {
            if (!list.isArray()) {
                throw new IllegalArgumentException(where + ".tool_calls is " + list.getNodeType().toString().toLowerCase()
                        + ", expected a list of objects");
            }
            for (int i = 0; i < list.size(); i++) {
                checkToolCall(list.get(i), where + ".tool_calls[" + i + "]");
                calls.add(list.get(i));
            }
        }
        return new ChatMessage(role.textValue(), text(m, "content", where), text(m, "reasoning_content", where), calls);
    }

    /**
     * A tool call the template can render: an object with a string "name" and "arguments" (an
     * object, or a string used verbatim), directly or under "function".
     */
    public static void checkToolCall(JsonNode call, String where) {
        if (call == null || !call.isObject()) {
            throw new IllegalArgumentException(where + " is " + call + ", expected an object {\"function\": {\"name\", \"arguments\"}}");
        }
        JsonNode f = call.has("function") && call.get("function").isObject() ? call.get("function") : call;
        String at = f == call ? where : where + ".function";
        if (!f.path("name").isTextual()) {
            throw new IllegalArgumentException(at + ".name is " + (f.has("name") ? f.get("name") : "missing") + ", expected a string");
        }
        JsonNode args = f.path("arguments");
        if (!args.isObject() && !args.isTextual()) {
            throw new IllegalArgumentException(at + ".arguments is " + (args.isMissingNode() ? "missing" : args.getNodeType().toString().toLowerCase())
                    + ", expected an object or a JSON string");
        }
    }

    private static String text(JsonNode m, String field, String where) {
        JsonNode v = m.path(field);
        if (v.isMissingNode() || v.isNull()) {
            return null;
        }
        if (!v.isTextual()) {
            throw new IllegalArgumentException(where + "." + field + " is " + v.getNodeType().toString().toLowerCase() + ", expected a string");
        }
        return v.textValue();
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
