package io.flinkqwen3.flink;

import io.flinkqwen3.model.GenerationConfig;
import io.flinkqwen3.runtime.GenerationRequest;
import io.flinkqwen3.runtime.SamplingParams;
import io.flinkqwen3.tokenizer.ChatMessage;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.flink.configuration.ReadableConfig;

/**
 * Turns a {@link PromptRecord} into a {@link GenerationRequest}: validation (every problem becomes
 * a reason for the dead-letter output), chat turns, limits and sampling (operator options, then the
 * record's own overrides).
 */
public final class RequestBuilder {
    static final Set<String> KNOWN_OPTIONS = Set.of("temperature", "top_p", "top_k", "min_p", "presence_penalty", "seed", "stop");
    static final Set<String> ROLES = Set.of("system", "user", "assistant", "tool");
    /** Separates several stop strings inside the 'stop' option. */
    static final String STOP_SEPARATOR = "\u001f";

    private final ReadableConfig options;
    private final GenerationConfig generationConfig;

    public RequestBuilder(ReadableConfig options, GenerationConfig generationConfig) {
        this.options = options;
        this.generationConfig = generationConfig;
    }

    /** Why the record cannot be answered, or null when it is valid. */
    public static String validate(PromptRecord r) {
        if (r.decodeError != null) {
            return r.decodeError;
        }
        boolean hasPrompt = r.prompt != null && !r.prompt.isBlank();
        boolean hasMessages = r.messages != null && !r.messages.isEmpty();
        if (!hasPrompt && !hasMessages) {
            return "missing prompt: give 'prompt' or a non-empty 'messages' list";
        }
        if (hasPrompt && hasMessages) {
            return "give either 'prompt' or 'messages', not both";
        }
        if (hasMessages) {
            for (ChatTurn t : r.messages) {
                if (t == null || t.role == null || !ROLES.contains(t.role)) {
                    return "message role '" + (t == null ? null : t.role) + "' is not one of " + ROLES;
                }
            }
        }
        if (r.slaMs != null && r.slaMs < 0) {
            return "negative sla_ms: " + r.slaMs;
        }
        if (r.maxTokens != null && r.maxTokens < 1) {
            return "max_tokens must be >= 1, got " + r.maxTokens;
        }
        if (r.thinkingBudget != null && r.thinkingBudget < GenerationRequest.UNLIMITED) {
            return "thinking_budget must be -1 (unlimited) or >= 0, got " + r.thinkingBudget;
        }
        if (r.options != null) {
            for (var e : r.options.entrySet()) {
                if (!KNOWN_OPTIONS.contains(e.getKey())) {
                    return "unknown option '" + e.getKey() + "' (known: " + KNOWN_OPTIONS + ")";
                }
                if (!e.getKey().equals("stop") && !isNumber(e.getValue())) {
                    return "option '" + e.getKey() + "' is not a number: '" + e.getValue() + "'";
                }
            }
        }
        return null;
    }

    private static boolean isNumber(String s) {
        try {
            Double.parseDouble(s);
            return true;
        } catch (NumberFormatException | NullPointerException e) {
            return false;
        }
    }

    int maxTokens(PromptRecord r) {
        return r.maxTokens != null ? r.maxTokens : options.get(Qwen3Options.DEFAULT_MAX_TOKENS);
    }

    /** The request with the given thinking budget (0 renders the non-thinking template). */
    public GenerationRequest build(PromptRecord r, int thinkingBudget) {
        List<ChatMessage> messages = new ArrayList<>();
        boolean hasSystem = r.messages != null && !r.messages.isEmpty() && "system".equals(r.messages.get(0).role);
        if (r.systemPrompt != null && !hasSystem) {
            messages.add(ChatMessage.system(r.systemPrompt));
        }
        if (r.messages != null && !r.messages.isEmpty()) {
            r.messages.forEach(t -> messages.add(new ChatMessage(t.role, t.content)));
        } else {
            messages.add(ChatMessage.user(r.prompt));
        }
        boolean thinks = thinkingBudget != 0;
        Map<String, String> o = r.options == null ? Map.of() : r.options;
        long seed = o.containsKey("seed") ? (long) Double.parseDouble(o.get("seed"))
                : r.id != null ? r.id.hashCode() : System.nanoTime(); // seeded by id: a resubmitted record gets the same answer
        SamplingParams s = SamplingParams.recommended(thinks, generationConfig, seed);
        float temperature = number(o, "temperature", options.getOptional(Qwen3Options.TEMPERATURE).map(Double::floatValue).orElse(s.temperature()));
        int topK = (int) number(o, "top_k", options.getOptional(Qwen3Options.TOP_K).orElse(s.topK()));
        float topP = number(o, "top_p", options.getOptional(Qwen3Options.TOP_P).map(Double::floatValue).orElse(s.topP()));
        float minP = number(o, "min_p", s.minP());
        float presence = number(o, "presence_penalty", options.get(Qwen3Options.PRESENCE_PENALTY).floatValue());
        List<String> stop = o.containsKey("stop") ? Arrays.asList(o.get("stop").split(STOP_SEPARATOR)) : List.of();
        return GenerationRequest.builder()
                .messages(messages)
                .enableThinking(thinks)
                .thinkingBudget(thinkingBudget)
                .maxTokens(maxTokens(r))
                .stopStrings(stop)
                .sampling(new SamplingParams(temperature, topK, topP, minP, presence, seed))
                .build();
    }

    private static float number(Map<String, String> o, String key, float fallback) {
        return o.containsKey(key) ? Float.parseFloat(o.get(key)) : fallback;
    }
}
