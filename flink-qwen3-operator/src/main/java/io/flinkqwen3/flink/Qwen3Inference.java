package io.flinkqwen3.flink;

import java.time.Duration;
import java.util.TreeSet;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.util.OutputTag;

/**
 * The DataStream API:
 *
 * <pre>{@code
 * SingleOutputStreamOperator<CompletionRecord> completions = Qwen3Inference.builder()
 *         .model("Qwen/Qwen3-0.6B")
 *         .option(Qwen3Options.MAX_IN_FLIGHT, 32)
 *         .build()
 *         .apply(prompts);
 * DataStream<DeadLetter> rejected = completions.getSideOutput(Qwen3Inference.DEAD_LETTERS);
 * DataStream<CompletionRecord> unsure = completions.getSideOutput(Qwen3Inference.LOW_CONFIDENCE); // with minConfidence
 * }</pre>
 */
public final class Qwen3Inference {
    /** Records that could not be answered, with the reason. */
    public static final OutputTag<DeadLetter> DEAD_LETTERS = new OutputTag<>("qwen3-dead-letters", TypeInformation.of(DeadLetter.class));
    /**
     * Classifications whose most probable label has a probability below 'min-confidence'
     * ({@link Builder#minConfidence}): the whole completion (id, label, label_probabilities,
     * attributes, ...), instead of on the main output.
     */
    public static final OutputTag<CompletionRecord> LOW_CONFIDENCE = new OutputTag<>("qwen3-low-confidence",
            TypeInformation.of(CompletionRecord.class));

    private final Configuration options;
    private final String uid;

    private Qwen3Inference(Configuration options, String uid) {
        this.options = options;
        this.uid = uid;
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Adds the inference operator after {@code prompts}; rejected records are the {@link #DEAD_LETTERS}
     * side output, classifications below 'min-confidence' the {@link #LOW_CONFIDENCE} one. Its uid (what a savepoint's state is matched by) is the builder's
     * {@link Builder#uid}, or else {@link #defaultUid} of the model and the input.
     */
    public SingleOutputStreamOperator<CompletionRecord> apply(DataStream<PromptRecord> prompts) {
        var input = prompts.getTransformation();
        return prompts.transform("Qwen3 inference", TypeInformation.of(CompletionRecord.class),
                new Qwen3InferenceOperatorFactory(options)).uid(uid != null ? uid
                : defaultUid(options.get(Qwen3Options.MODEL), input.getUid() != null ? input.getUid() : input.getName()));
    }

    /**
     * "qwen3-inference:MODEL:INPUT", INPUT the uid of the input (its name when it has none): stable
     * across runs of the same program, and distinct for steps on other inputs or other models. Two
     * steps with one model on one input need {@link Builder#uid}.
     */
    static String defaultUid(String model, String input) {
        return "qwen3-inference:" + model + ":" + input;
    }

    public static final class Builder {
        private final Configuration options = new Configuration();
        private String uid;

        public Builder model(String location) {
            options.set(Qwen3Options.MODEL, location);
            return this;
        }

        /** Requests a subtask keeps in flight, >= 1 (see {@link Qwen3Options#MAX_IN_FLIGHT}). */
        public Builder maxInFlight(int requests) {
            return option(Qwen3Options.MAX_IN_FLIGHT, requests);
        }

        /** Emit completions in input order (see {@link Qwen3Options#ORDERED}). */
        public Builder ordered(boolean ordered) {
            return option(Qwen3Options.ORDERED, ordered);
        }

        /** Tokens generated for records without max_tokens, >= 1 (see {@link Qwen3Options#DEFAULT_MAX_TOKENS}). */
        public Builder defaultMaxTokens(int tokens) {
            return option(Qwen3Options.DEFAULT_MAX_TOKENS, tokens);
        }

        /** SLA of records without sla_ms or deadline_ms (see {@link Qwen3Options#DEFAULT_SLA}). */
        public Builder defaultSla(Duration sla) {
            return option(Qwen3Options.DEFAULT_SLA, sla);
        }

        /** Kernel threads of the task manager's engine, >= 1 (see {@link Qwen3Options#THREADS}). */
        public Builder threads(int threads) {
            return option(Qwen3Options.THREADS, threads);
        }

        /** Prompt plus output tokens per request (see {@link Qwen3Options#MAX_CONTEXT}). */
        public Builder maxContext(int tokens) {
            return option(Qwen3Options.MAX_CONTEXT, tokens);
        }

        /**
         * Classifications below this probability of their label, 0 to 1, go to {@link #LOW_CONFIDENCE}
         * (see {@link Qwen3Options#MIN_CONFIDENCE}).
         */
        public Builder minConfidence(double probability) {
            return option(Qwen3Options.MIN_CONFIDENCE, probability);
        }

        /** Memory of the task manager's KV cache, > 0 (see {@link Qwen3Options#KV_CACHE_MEMORY}). */
        public Builder kvCacheMemory(MemorySize memory) {
            return option(Qwen3Options.KV_CACHE_MEMORY, memory);
        }

        public <T> Builder option(ConfigOption<T> option, T value) {
            options.set(option, value);
            return this;
        }

        /**
         * The operator's uid, which a savepoint's state is matched by; needed for two steps with one
         * model on one input. Default: {@code qwen3-inference:MODEL:INPUT} (see {@link Qwen3Inference#apply}).
         */
        public Builder uid(String uid) {
            if (uid == null || uid.isBlank()) {
                throw new IllegalArgumentException("uid must be a non-empty string");
            }
            this.uid = uid;
            return this;
        }

        public Builder options(Configuration more) {
            options.addAll(more);
            return this;
        }

        /**
         * Checks the model is set, every {@code qwen3.*} key is an option of the operator and every
         * option is in its range (IllegalArgumentException saying which is not).
         */
        public Qwen3Inference build() {
            if (options.getOptional(Qwen3Options.MODEL).isEmpty()) {
                throw new IllegalArgumentException("Qwen3Inference needs a model: a directory, .gguf file or Hugging Face repo id");
            }
            var known = new TreeSet<String>();
            Qwen3Options.all().stream().filter(o -> !Qwen3Options.SQL_ONLY.contains(o)).forEach(o -> known.add(o.key()));
            for (ConfigOption<?> sqlOnly : Qwen3Options.SQL_ONLY) {
                if (options.contains(sqlOnly)) {
                    throw new IllegalArgumentException("option '" + sqlOnly.key() + "' applies to SQL only: DataStream records carry "
                            + "their own system_prompt, json_schema and thinking_budget");
                }
            }
            for (String key : options.keySet()) {
                if (key.startsWith("qwen3.") && !known.contains(key)) {
                    throw new IllegalArgumentException("unknown option '" + key + "' (known: " + known + ")");
                }
            }
            Qwen3Options.validate(options);
            return new Qwen3Inference(options.clone(), uid);
        }
    }
}
