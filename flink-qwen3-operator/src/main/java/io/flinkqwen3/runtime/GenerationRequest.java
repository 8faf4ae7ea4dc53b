package io.flinkqwen3.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import io.flinkqwen3.tokenizer.ChatMessage;
import java.util.List;

/**
 * One generation: chat messages (rendered with the Qwen3 template), a raw prompt (used verbatim) or
 * prompt token ids; thinking switch and budget; limits and sampling.
 *
 * <p>thinkingBudget: -1 unlimited, 0 renders the non-thinking template, N > 0 inserts Qwen's
 * early-stop text after N thinking tokens without {@code </think>}.
 *
 * <p>labels: null for free generation; otherwise a classification over these strings (see
 * {@link Labels} for the limits): the engine prefills the prompt once (thinking first when the
 * request thinks, then {@code </think>\n\n} as the chat template renders it), scores each label as
 * the continuation of the answer (the sum of its tokens' log-probabilities, all labels batched over
 * the prompt's shared KV cache) and returns {@link GenerationResult#label()} and
 * {@link GenerationResult#labelProbabilities()} (softmax over the sums), no generated answer text.
 * maxTokens then bounds the thinking only; sampling applies to the thinking only.
 *
 * <p>maxAnswerTokens: tokens after the think block before the answer is cut ({@code length}); 0 = only
 * maxTokens (thinking plus answer) limits it.
 *
 * <p>adaptiveBudget: the thinking budget is where the request starts, and the engine re-decides it
 * every step from the deadline ({@link SlaBudgetPolicy#replan}), keeping answerReserveTokens decode
 * steps for the answer. False: the budget is the caller's and is kept.
 *
 * <p>jsonSchema: null, or a JSON Schema (JSON text, the subset of {@link JsonSchemaGrammar}) that
 * the answer must satisfy: decoding is then constrained token by token after the thinking (if any),
 * and {@link GenerationResult#answer()} is JSON that parses and validates. An unsupported schema,
 * stop strings together with a schema, or max tokens below what the shortest valid answer needs
 * are refused by {@link Qwen3Engine#submit} with an IllegalArgumentException.
 *
 * <p>tools: function definitions rendered into the system turn by the chat template (messages only;
 * empty for none), e.g. {@code {"type": "function", "function": {"name": ..., "parameters": ...}}}.
 */
public record GenerationRequest(
        List<ChatMessage> messages,
        String rawPrompt,
        int[] promptTokens,
        boolean enableThinking,
        int thinkingBudget,
        int maxTokens,
        int maxAnswerTokens,
        List<String> stopStrings,
        SamplingParams sampling,
        String jsonSchema,
        List<JsonNode> tools,
        boolean adaptiveBudget,
        int answerReserveTokens,
        List<String> labels) {

    public static final int UNLIMITED = -1;

    public GenerationRequest {
        int sources = (messages != null ? 1 : 0) + (rawPrompt != null ? 1 : 0) + (promptTokens != null ? 1 : 0);
        if (sources != 1) {
            throw new IllegalArgumentException("a request needs exactly one of messages, raw prompt or prompt tokens");
        }
        if (maxTokens < 1) {
            throw new IllegalArgumentException("max tokens must be >= 1, got " + maxTokens);
        }
        if (maxAnswerTokens < 0 || answerReserveTokens < 0) {
            throw new IllegalArgumentException("max answer tokens and answer reserve must be >= 0, got " + maxAnswerTokens
                    + " and " + answerReserveTokens);
        }
        if (thinkingBudget < UNLIMITED) {
            throw new IllegalArgumentException("thinking budget must be -1 (unlimited) or >= 0, got " + thinkingBudget);
        }
        stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        messages = messages == null ? null : List.copyOf(messages);
        tools = tools == null ? List.of() : List.copyOf(tools);
        if (!tools.isEmpty() && messages == null) {
            throw new IllegalArgumentException("tools need chat messages (they are rendered by the chat template)");
        }
        labels = labels == null ? null : Labels.validate(labels);
        if (labels != null && jsonSchema != null) {
            throw new IllegalArgumentException("labels and json_schema cannot be combined: a classification generates no answer text");
        }
    }

    /** Whether this request classifies over {@link #labels()} instead of generating an answer. */
    public boolean classifies() {
        return labels != null;
    }

    /** True when the prompt leaves room for thinking (the think block is not pre-filled empty). */
    public boolean thinks() {
        return enableThinking && thinkingBudget != 0;
    }

    /** This request with other sampling settings (null: Qwen's recommendation for the mode). */
    public GenerationRequest withSampling(SamplingParams s) {
        return new GenerationRequest(messages, rawPrompt, promptTokens, enableThinking, thinkingBudget, maxTokens, maxAnswerTokens,
                stopStrings, s, jsonSchema, tools, adaptiveBudget, answerReserveTokens, labels);
    }

    public static Builder builder() {
        return new Builder();
    }

    public GenerationRequest withThinkingBudget(int budget) {
        return new GenerationRequest(messages, rawPrompt, promptTokens, enableThinking, budget, maxTokens, maxAnswerTokens,
                stopStrings, sampling, jsonSchema, tools, adaptiveBudget, answerReserveTokens, labels);
    }

    /** Answer tokens the deadline planning keeps room for: the reserve, within maxAnswerTokens when that is set. */
    int plannedAnswerTokens() {
        return maxAnswerTokens > 0 ? Math.min(maxAnswerTokens, answerReserveTokens) : answerReserveTokens;
    }

    public static final class Builder {
        private List<ChatMessage> messages;
        private String rawPrompt;
        private int[] promptTokens;
        private boolean enableThinking = true;
        private int thinkingBudget = UNLIMITED;
        private int maxTokens = 512;
        private int maxAnswerTokens;
        private List<String> stopStrings = List.of();
        private SamplingParams sampling;
        private boolean adaptiveBudget;
        private int answerReserveTokens = SlaBudgetPolicy.DEFAULT_ANSWER_RESERVE_TOKENS;
        private String jsonSchema;
        private List<JsonNode> tools = List.of();
        private List<String> labels;

        public Builder messages(List<ChatMessage> m) {
            this.messages = m;
            return this;
        }

        public Builder user(String prompt) {
            return messages(List.of(ChatMessage.user(prompt)));
        }

        public Builder rawPrompt(String p) {
            this.rawPrompt = p;
            return this;
        }

        public Builder promptTokens(int[] t) {
            this.promptTokens = t;
            return this;
        }

        public Builder enableThinking(boolean on) {
            this.enableThinking = on;
            return this;
        }

        public Builder thinkingBudget(int b) {
            this.thinkingBudget = b;
            return this;
        }

        public Builder maxTokens(int n) {
            this.maxTokens = n;
            return this;
        }

        /** 0: no limit of its own (maxTokens still applies). */
        public Builder maxAnswerTokens(int n) {
            this.maxAnswerTokens = n;
            return this;
        }

        /** Let the engine re-decide the thinking budget every step from the deadline. */
        public Builder adaptiveBudget(boolean adaptive) {
            this.adaptiveBudget = adaptive;
            return this;
        }

        /** Decode steps the deadline planning keeps for the answer (default {@link SlaBudgetPolicy#DEFAULT_ANSWER_RESERVE_TOKENS}). */
        public Builder answerReserveTokens(int n) {
            this.answerReserveTokens = n;
            return this;
        }

        public Builder stopStrings(List<String> s) {
            this.stopStrings = s;
            return this;
        }

        /** Null: Qwen's recommended settings for the mode, with generation_config.json defaults. */
        public Builder sampling(SamplingParams s) {
            this.sampling = s;
            return this;
        }

        /** A JSON Schema (JSON text) the answer must satisfy; null for free text. */
        public Builder jsonSchema(String schema) {
            this.jsonSchema = schema;
            return this;
        }

        /** Function definitions for the chat template's system turn. */
        public Builder tools(List<JsonNode> t) {
            this.tools = t;
            return this;
        }

        /** Null (default): free generation; else classify over these labels (validated by {@link Labels#validate}). */
        public Builder labels(List<String> l) {
            this.labels = l;
            return this;
        }

        public GenerationRequest build() {
            return new GenerationRequest(messages, rawPrompt, promptTokens, enableThinking, thinkingBudget, maxTokens,
                    maxAnswerTokens, stopStrings, sampling, jsonSchema, tools, adaptiveBudget, answerReserveTokens, labels);
        }
    }
}
