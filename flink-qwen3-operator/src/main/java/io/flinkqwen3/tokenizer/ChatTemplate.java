package io.flinkqwen3.tokenizer;

import java.util.List;

/**
 * Qwen3's chat template (ChatML with think blocks), written out in Java rather than interpreted
 * from Jinja. It follows the template in Qwen3's tokenizer_config.json line by line, without tools:
 * <ul>
 *   <li>a leading system message becomes the first turn;</li>
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

    /**
     * Whether a model's Jinja chat template (null: none) opens the think block in its generation
     * prompt, as Qwen3-*-Thinking-2507 do: the model's output then starts inside the thought.
     */
    public static boolean opensThinkBlock(String jinjaTemplate) {
        return jinjaTemplate != null && jinjaTemplate.contains(THINK_OPENING_GENERATION_PROMPT);
    }

    public static String render(List<ChatMessage> messages, boolean addGenerationPrompt, boolean enableThinking) {
        return render(messages, addGenerationPrompt, enableThinking, false);
    }

    /** As {@link #render(List, boolean, boolean)}; opensThinkBlock: the template is a Thinking-2507 one. */
    public static String render(List<ChatMessage> messages, boolean addGenerationPrompt, boolean enableThinking,
                                boolean opensThinkBlock) {
        var out = new StringBuilder();
        if (!messages.isEmpty() && messages.get(0).role().equals("system")) {
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
                default -> throw new IllegalArgumentException("unknown chat role '" + m.role()
                        + "' (expected system, user, assistant or tool)");
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
        out.append("<|im_end|>\n");
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
