package io.flinkqwen3.flink;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.flinkqwen3.model.GenerationConfig;
import io.flinkqwen3.runtime.GenerationRequest;
import io.flinkqwen3.runtime.JsonSchemaGrammar;
import io.flinkqwen3.runtime.Labels;
import io.flinkqwen3.runtime.SamplingParams;
import io.flinkqwen3.tokenizer.ChatMessage;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.flink.configuration.ReadableConfig;

/**
 * Turns a {@link PromptRecord} into a {@link GenerationRequest}: validation (every problem becomes
 * a reason for the dead-letter output), chat turns, limits and sampling (operator options, then the
 * record's own overrides).
 *
 * <p>A record is valid when it fits the Avro schema ({@link RecordCodec#schemaViolation}) and its
 * values make sense; {@link #build} then cannot fail on it. Options are parsed once, by
 * {@link Overrides#parse}, for both validation and the request.
 */
public final class RequestBuilder {
    static final Set<String> KNOWN_OPTIONS = Set.of("temperature", "top_p", "top_k", "min_p", "presence_penalty", "seed", "stop",
            "max_answer_tokens");
    static final Set<String> ROLES = Set.of("system", "user", "assistant", "tool");
    /** Separates several stop strings inside the 'stop' option. */
    static final String STOP_SEPARATOR = "\u001f";
    /** Temperatures in (0, this) are answered greedily: the limit they tend to, without overflowing logits / T. */
    static final float GREEDY_BELOW = 1e-6f;
    static final double MAX_TEMPERATURE = 100;
    static final double MAX_PRESENCE_PENALTY = 2;
    /** Longest text accepted as a number (longer ones are not numbers anyone means). */
    private static final int MAX_NUMBER_CHARS = 64;

    private final ReadableConfig options;
    private final GenerationConfig generationConfig;

    public RequestBuilder(ReadableConfig options, GenerationConfig generationConfig) {
        this.options = options;
        this.generationConfig = generationConfig;
    }

    /** Why the record cannot be answered, or null when it is valid. */
    public static String validate(PromptRecord r) {
        if (r == null) {
            return "null record";
        }
        if (r.decodeError != null) {
            return r.decodeError;
        }
        String schema = RecordCodec.schemaViolation(r);
        if (schema != null) {
            return schema;
        }
        boolean hasPrompt = r.prompt != null && !r.prompt.isBlank();
        boolean hasMessages = r.messages != null && !r.messages.isEmpty();
        if (!hasPrompt && !hasMessages) {
            return "missing prompt: give 'prompt' or a non-empty 'messages' list";
        }
        if (hasPrompt && hasMessages) {
            return "give either 'prompt' or 'messages', not both";
        }
        if (r.labels != null && r.jsonSchema != null) {
            return "give either 'labels' (classify) or 'json_schema' (structured answer), not both";
        }
        // roles the chat template does not know are skipped by it, as by Hugging Face's template
        try {
            messages(r);
            tools(r);
            if (r.jsonSchema != null) {
                JsonSchemaGrammar.compile(r.jsonSchema);
            }
            if (r.labels != null) {
                Labels.validate(r.labels);
            }
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
        if (r.slaMs != null && r.slaMs < 0) {
            return "negative sla_ms: " + r.slaMs + " (milliseconds after arrival, >= 0)";
        }
        if (r.deadlineMs != null && r.deadlineMs < 0) {
            return "negative deadline_ms: " + r.deadlineMs + " (epoch milliseconds, >= 0)";
        }
        if (r.maxTokens != null && r.maxTokens < 1) {
            return "max_tokens must be >= 1, got " + r.maxTokens;
        }
        if (r.thinkingBudget != null && r.thinkingBudget < GenerationRequest.UNLIMITED) {
            return "thinking_budget must be -1 (unlimited) or >= 0, got " + r.thinkingBudget;
        }
        try {
            Overrides.parse(r.options);
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
        return null;
    }

    int maxTokens(PromptRecord r) {
        return r.maxTokens != null ? r.maxTokens : options.get(Qwen3Options.DEFAULT_MAX_TOKENS);
    }

    /** The request with the given thinking budget (0 renders the non-thinking template). The record must be valid. */
    public GenerationRequest build(PromptRecord r, int thinkingBudget) {
        return build(r, thinkingBudget, false);
    }

    /**
     * As {@link #build(PromptRecord, int)}; adaptive: the budget is the SLA policy's, which the engine
     * re-decides every step keeping the operator's answer-reserve-tokens for the answer.
     */
    public GenerationRequest build(PromptRecord r, int thinkingBudget, boolean adaptive) {
        List<ChatMessage> messages = new ArrayList<>();
        boolean hasSystem = r.messages != null && !r.messages.isEmpty() && "system".equals(r.messages.get(0).role);
        if (r.systemPrompt != null && !hasSystem) {
            messages.add(ChatMessage.system(r.systemPrompt));
        }
        if (r.messages != null && !r.messages.isEmpty()) {
            messages.addAll(messages(r));
        } else {
            messages.add(ChatMessage.user(r.prompt));
        }
        boolean thinks = thinkingBudget != 0;
        Overrides o = Overrides.parse(r.options);
        // never the clock: a resubmitted (or replayed) record gets the same answer
        long seed = o.seed() != null ? o.seed() : r.id != null ? r.id.hashCode() : contentSeed(messages);
        SamplingParams s = SamplingParams.recommended(thinks, generationConfig, seed);
        float temperature = orElse(o.temperature(), options.getOptional(Qwen3Options.TEMPERATURE)
                .map(t -> temperature("temperature", t)).orElse(s.temperature()));
        int topK = orElse(o.topK(), options.getOptional(Qwen3Options.TOP_K).orElse(s.topK()));
        float topP = orElse(o.topP(), options.getOptional(Qwen3Options.TOP_P).map(Double::floatValue).orElse(s.topP()));
        float minP = orElse(o.minP(), s.minP());
        float presence = orElse(o.presencePenalty(), options.get(Qwen3Options.PRESENCE_PENALTY).floatValue());
        return GenerationRequest.builder()
                .messages(messages)
                .enableThinking(thinks)
                .thinkingBudget(thinkingBudget)
                .maxTokens(maxTokens(r))
                .maxAnswerTokens(o.maxAnswerTokens() == null ? 0 : o.maxAnswerTokens())
                .stopStrings(o.stop())
                .sampling(new SamplingParams(temperature, topK, topP, minP, presence, seed))
                .jsonSchema(r.jsonSchema)
                .labels(r.labels)
                .tools(r.messages != null && !r.messages.isEmpty() ? tools(r) : List.of())
                .adaptiveBudget(adaptive)
                .answerReserveTokens(options.get(Qwen3Options.ANSWER_RESERVE_TOKENS))
                .build();
    }

    /**
     * The seed of a record without id: a hash of its chat turns (roles and texts), the same in every
     * JVM (String.hashCode is specified), so equal records sample equally.
     */
    static long contentSeed(List<ChatMessage> messages) {
        long h = 1;
        for (ChatMessage m : messages) {
            h = 31 * h + m.role().hashCode();
            h = 31 * h + (m.content() == null ? 0 : m.content().hashCode());
        }
        return h;
    }

    /** The record's turns as chat messages, tool calls parsed; IllegalArgumentException naming the field. */
    static List<ChatMessage> messages(PromptRecord r) {
        List<ChatMessage> out = new ArrayList<>();
        if (r.messages == null) {
            return out;
        }
        for (int i = 0; i < r.messages.size(); i++) {
            ChatTurn t = r.messages.get(i);
            List<JsonNode> calls = new ArrayList<>();
            if (t.toolCalls != null) {
                for (int c = 0; c < t.toolCalls.size(); c++) {
                    String where = "messages[" + i + "].tool_calls[" + c + "]";
                    JsonNode call = json(t.toolCalls.get(c), where);
                    ChatMessage.checkToolCall(call, where);
                    calls.add(call);
                }
            }
            out.add(new ChatMessage(t.role, t.content, t.reasoningContent, calls));
        }
        return out;
    }

    /** The record's tool definitions, each a JSON object. */
    static List<JsonNode> tools(PromptRecord r) {
        List<JsonNode> out = new ArrayList<>();
        if (r.tools == null) {
            return out;
        }
        if (!r.tools.isEmpty() && (r.messages == null || r.messages.isEmpty())) {
            throw new IllegalArgumentException("tools need 'messages' (a prompt is one user turn without a system turn for them)");
        }
        for (int i = 0; i < r.tools.size(); i++) {
            JsonNode tool = json(r.tools.get(i), "tools[" + i + "]");
            if (!tool.isObject()) {
                throw new IllegalArgumentException("tools[" + i + "] is " + quote(r.tools.get(i))
                        + ", expected a JSON object (a function definition)");
            }
            out.add(tool);
        }
        return out;
    }

    private static JsonNode json(String text, String where) {
        try {
            JsonNode n = RecordCodec.JSON.readTree(text);
            if (n == null || n.isMissingNode()) {
                throw new IllegalArgumentException(where + " is empty, expected JSON");
            }
            return n;
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(where + " is not JSON: " + e.getOriginalMessage());
        }
    }

    private static <T> T orElse(T value, T fallback) {
        return value != null ? value : fallback;
    }

    /**
     * A record's sampling options, parsed and range-checked; absent ones are null. Numbers are
     * decimal (JSON number syntax, as strings): NaN, Infinity and values outside a field's range are
     * rejected with the field and the range.
     */
    record Overrides(Float temperature, Integer topK, Float topP, Float minP, Float presencePenalty, Long seed,
                     List<String> stop, Integer maxAnswerTokens) {
        static Overrides parse(Map<String, String> options) {
            if (options == null || options.isEmpty()) {
                return new Overrides(null, null, null, null, null, null, List.of(), null);
            }
            for (String key : options.keySet()) {
                if (!KNOWN_OPTIONS.contains(key)) {
                    return fail("unknown option " + quote(key) + " (known: " + new TreeSet<>(KNOWN_OPTIONS) + ")");
                }
            }
            BigDecimal t = number(options, "temperature");
            BigDecimal k = number(options, "top_k");
            BigDecimal p = number(options, "top_p");
            BigDecimal m = number(options, "min_p");
            BigDecimal penalty = number(options, "presence_penalty");
            BigDecimal seed = number(options, "seed");
            BigDecimal answer = number(options, "max_answer_tokens");
            return new Overrides(
                    t == null ? null : RequestBuilder.temperature("option 'temperature'", t.doubleValue()),
                    k == null ? null : RequestBuilder.topK("option 'top_k'", integer("top_k", k, 0, Integer.MAX_VALUE)),
                    p == null ? null : RequestBuilder.topP("option 'top_p'", p.doubleValue()),
                    m == null ? null : RequestBuilder.minP("option 'min_p'", m.doubleValue()),
                    penalty == null ? null : RequestBuilder.presencePenalty("option 'presence_penalty'", penalty.doubleValue()),
                    seed == null ? null : integer("seed", seed, Long.MIN_VALUE, Long.MAX_VALUE),
                    stop(options.get("stop")),
                    answer == null ? null : (int) integer("max_answer_tokens", answer, 1, Integer.MAX_VALUE));
        }

        private static <T> T fail(String reason) {
            throw new IllegalArgumentException(reason);
        }

        private static BigDecimal number(Map<String, String> options, String key) {
            String text = options.get(key);
            if (text == null) {
                return null;
            }
            if (text.length() > MAX_NUMBER_CHARS) {
                return fail("option '" + key + "' is not a number: " + quote(text));
            }
            try {
                return new BigDecimal(text.strip());
            } catch (NumberFormatException e) {
                return fail("option '" + key + "' is not a number: " + quote(text));
            }
        }

        private static long integer(String key, BigDecimal value, long min, long max) {
            long v;
            try {
                v = value.longValueExact();
            } catch (ArithmeticException e) {
                return fail("option '" + key + "' must be an integer between " + min + " and " + max + ", got " + value);
            }
            if (v < min || v > max) {
                return fail("option '" + key + "' must be an integer between " + min + " and " + max + ", got " + value);
            }
            return v;
        }

        private static List<String> stop(String option) {
            if (option == null) {
                return List.of();
            }
            List<String> stop = Arrays.asList(option.split(STOP_SEPARATOR, -1));
            if (stop.contains("")) {
                return fail("option 'stop' contains an empty stop string (which would stop at once): " + quote(option)
                        + " (several stop strings are separated by \\u001f)");
            }
            return stop;
        }
    }

    // Range checks shared by record options and operator options; 'name' says which one in the message.

    static float temperature(String name, double t) {
        if (!(t >= 0 && t <= MAX_TEMPERATURE)) {
            throw new IllegalArgumentException(name + " must be between 0 (greedy) and " + (int) MAX_TEMPERATURE + ", got " + t);
        }
        return t < GREEDY_BELOW ? 0f : (float) t;
    }

    static float topP(String name, double p) {
        if (!(p > 0 && p <= 1)) {
            throw new IllegalArgumentException(name + " must be > 0 and <= 1, got " + p);
        }
        return (float) p;
    }

    static float minP(String name, double p) {
        if (!(p >= 0 && p <= 1)) {
            throw new IllegalArgumentException(name + " must be between 0 and 1, got " + p);
        }
        return (float) p;
    }

    static float presencePenalty(String name, double penalty) {
        if (!(Math.abs(penalty) <= MAX_PRESENCE_PENALTY)) {
            throw new IllegalArgumentException(name + " must be between -" + (int) MAX_PRESENCE_PENALTY + " and "
                    + (int) MAX_PRESENCE_PENALTY + ", got " + penalty);
        }
        return (float) penalty;
    }

    static int topK(String name, long k) {
        if (k < 0 || k > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + " must be 0 (off) or a positive int, got " + k);
        }
        return (int) k;
    }

    /** A value from the input, quoted and cut to a readable length for a dead-letter reason. */
    static String quote(String value) {
        if (value == null) {
            return "null";
        }
        return value.length() <= 80 ? "'" + value + "'" : "'" + value.substring(0, 80) + "...' (" + value.length() + " chars)";
    }
}
