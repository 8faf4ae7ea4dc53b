package io.flinkqwen3.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * Qwen3's chat template (ChatML with think blocks), written out in Java rather than interpreted
 * from Jinja. It follows the template in Qwen3's tokenizer_config.json line by line (goldens
 * rendered from the real template: src/test/resources/chat-template-goldens.json):
 * <ul>
 *   <li>with tools, the system turn lists them (each as {@code tojson}, see {@link TemplateJson})
 *       after the leading system message's content, with Qwen's tool-call instructions;</li>
 *   <li>a leading system message becomes the first turn;</li>
 *   <li>assistant tool calls become {@code <tool_call>} blocks after the content;</li>
 *   <li>assistant reasoning (a think block in content, or reasoningContent) is kept only for
 *       assistant turns after the last real user query;</li>
 *   <li>tool results are folded into user turns as tool_response blocks;</li>
 *   <li>the generation prompt is {@code <|im_start|>assistant\n}, plus an empty think block when
 *       thinking is disabled; templates that open the think block themselves (Qwen3-*-Thinking-2507:
 *       {@code <|im_start|>assistant\n<think>\n}) get it opened when thinking is enabled.</li>
 * </ul>
 */
public final class ChatTemplate {
    public static final String THINK_OPEN = "<think>";
    public static final String THINK_CLOSE = "</think>";
    public static final String EMPTY_THINK_BLOCK = "<think>\n\n</think>\n\n";

    /** The generation prompt of the Thinking-2507 templates, as written in their Jinja source. */
    private static final String THINK_OPENING_GENERATION_PROMPT = "'<|im_start|>assistant\\n<think>\\n'";

    private ChatTemplate() {}

    private static final String TOOLS_INTRO = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    private static final String TOOLS_OUTRO = "\n</tools>\n\nFor each function call, return a json object with function name and "
            + "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
            + "<args-json-object>}\n</tool_call><|im_end|>\n";

    /**
     * Whether a model's Jinja chat template (null: none) opens the think block in its generation
     * prompt, as Qwen3-*-Thinking-2507 do: the model's output then starts inside the thought.
     */
    public static boolean opensThinkBlock(String jinjaTemplate) {
        return jinjaTemplate != null && jinjaTemplate.contains(THINK_OPENING_GENERATION_PROMPT);
    }

    public static String render(List<ChatMessage> messages, boolean addGenerationPrompt, boolean enableThinking) {
        return render(messages, List.of(), addGenerationPrompt, enableThinking, false);
    }

    /** As {@link #render(List, List, boolean, boolean, boolean)} for a template that does not open the think block. */
    public static String render(List<ChatMessage> messages, List<JsonNode> tools, boolean addGenerationPrompt,
                                boolean enableThinking) {
        return render(messages, tools, addGenerationPrompt, enableThinking, false);
    }

    /**
     * The prompt text for messages and tools (function definitions as the caller sends them, e.g.
     * {@code {"type": "function", "function": {"name": ..., "parameters": ...}}}; empty for none);
     * opensThinkBlock: the model's template is a Thinking-2507 one ({@link #opensThinkBlock(String)}).
     */
    public static String render(List<ChatMessage> messages, List<JsonNode> tools, boolean addGenerationPrompt,
                                boolean enableThinking, boolean opensThinkBlock) {
        var out = new StringBuilder();
        boolean leadingSystem = !messages.isEmpty() && messages.get(0).role().equals("system");
        if (tools != null && !tools.isEmpty()) {
            out.append("<|im_start|>system\n");
            if (leadingSystem) {
                out.append(messages.get(0).content()).append("\n\n");
            }
            out.append(TOOLS_INTRO);
            for (JsonNode tool : tools) {
                out.append('\n').append(TemplateJson.dumps(tool));
            }
            out.append(TOOLS_OUTRO);
        } else if (leadingSystem) {
            out.append("<|im_start|>system\n").append(messages.get(0).content()).append("<|im_end|>\n");
        }
        int lastQueryIndex = lastQueryIndex(messages);
        for (int i = 0; i < messages.size(); i++) {
            ChatMessage m = messages.get(i);
            switch (m.role()) {
                case "user" -> turn(out, m);
                case "system" -> {
                    if (i > 0) {
                        turn(out, m);
                    }
                }
                case "assistant" -> assistant(out, m, i > lastQueryIndex, i == messages.size() - 1);
                case "tool" -> {
                    if (i == 0 || !messages.get(i - 1).role().equals("tool")) {
                        out.append("<|im_start|>user");
                    }
                    out.append("\n<tool_response>\n").append(m.content()).append("\n</tool_response>");
                    if (i == messages.size() - 1 || !messages.get(i + 1).role().equals("tool")) {
                        out.append("<|im_end|>\n");
                    }
                }
                default -> { } // the template renders only the roles it knows
            }
        }
        if (addGenerationPrompt) {
            out.append("<|im_start|>assistant\n");
            if (!enableThinking) {
                out.append(EMPTY_THINK_BLOCK);
            } else if (opensThinkBlock) {
                out.append(THINK_OPEN).append('\n');
            }
        }
        return out.toString();
    }

    private static void turn(StringBuilder out, ChatMessage m) {
        out.append("<|im_start|>").append(m.role()).append('\n').append(m.content()).append("<|im_end|>\n");
    }

    /** Index of the last user message that is not a tool response (the template's ns.last_query_index). */
    private static int lastQueryIndex(List<ChatMessage> messages) {
        for (int i = messages.size() - 1; i >= 0; i--) {
            ChatMessage m = messages.get(i);
            String c = m.content();
            if (m.role().equals("user") && !(c.startsWith("<tool_response>") && c.endsWith("</tool_response>"))) {
                return i;
            }
        }
        return messages.size() - 1;
    }

    private static void assistant(StringBuilder out, ChatMessage m, boolean afterLastQuery, boolean last) {
        String content = m.content();
        String reasoning = "";
        if (m.reasoningContent() != null) {
            reasoning = m.reasoningContent();
        } else if (content.contains(THINK_CLOSE)) {
            // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
            String before = rstrip(content.substring(0, content.indexOf(THINK_CLOSE)));
            int open = before.lastIndexOf(THINK_OPEN);
            reasoning = lstrip(open < 0 ? before : before.substring(open + THINK_OPEN.length()));
            content = lstrip(content.substring(content.lastIndexOf(THINK_CLOSE) + THINK_CLOSE.length()));
        }
        out.append("<|im_start|>assistant\n");
        if (afterLastQuery && (last || !reasoning.isEmpty())) {
            out.append("<think>\n").append(strip(reasoning)).append("\n</think>\n\n").append(lstrip(content));
        } else {
            out.append(content);
        }
        for (int i = 0; i < m.toolCalls().size(); i++) {
            if (i > 0 || !content.isEmpty()) {
                out.append('\n');
            }
            JsonNode call = m.toolCalls().get(i);
            if (truthy(call.get("function"))) {
                call = call.get("function");
            }
            JsonNode name = call.path("name"), arguments = call.path("arguments");
            out.append("<tool_call>\n{\"name\": \"").append(name.isTextual() ? name.textValue() : name.isMissingNode() ? "" : name.toString())
                    .append("\", \"arguments\": ")
                    .append(arguments.isTextual() ? arguments.textValue() : TemplateJson.dumps(arguments))
                    .append("}\n</tool_call>");
        }
        out.append("<|im_end|>\n");
    }

    /** Jinja's truth: absent, null, false, 0, "" and empty containers are false. */
    private static boolean truthy(JsonNode v) {
        if (v == null || v.isNull() || v.isMissingNode()) {
            return false;
        }
        if (v.isBoolean()) {
            return v.booleanValue();
        }
        if (v.isNumber()) {
            return v.doubleValue() != 0;
        }
        return v.isTextual() ? !v.textValue().isEmpty() : !v.isContainerNode() || !v.isEmpty();
    }

    /** Python's str.lstrip('\n'). */
    static String lstrip(String s) {
        int i = 0;
        while (i < s.length() && s.charAt(i) == '\n') {
            i++;
        }
        return s.substring(i);
    }

    /** Python's str.rstrip('\n'). */
    static String rstrip(String s) {
        int j = s.length();
        while (j > 0 && s.charAt(j - 1) == '\n') {
            j--;
        }
        return s.substring(0, j);
    }

    /** Python's str.strip('\n'). */
    public static String strip(String s) {
        return lstrip(rstrip(s));
    }
}
