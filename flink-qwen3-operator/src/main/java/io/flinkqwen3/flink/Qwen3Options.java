package io.flinkqwen3.flink;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.flinkqwen3.model.QuantizedCheckpoint;
import io.flinkqwen3.runtime.EngineOptions;
import io.flinkqwen3.runtime.GenerationResult;
import io.flinkqwen3.runtime.JsonSchemaGrammar;
import io.flinkqwen3.runtime.KvBlockPool;
import io.flinkqwen3.runtime.Labels;
import io.flinkqwen3.tensor.Parallel;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.FallbackKey;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.ReadableConfig;

/**
 * Options of the Qwen3 inference operator ({@code Qwen3Inference.builder().option(...)}) and of the
 * SQL model provider ({@code CREATE MODEL ... WITH (...)}); most apply to both, see
 * {@link #DATASTREAM_ONLY} and {@link #SQL_ONLY}. docs/options.md lists them all by group (generated
 * from this class; a test fails when it is out of date).
 *
 * <p>Keys, like Flink's own: {@code qwen3.<group>.<name>}, the group one of {@code model},
 * {@code engine}, {@code generation}, {@code sla}, {@code thinking}, {@code operator} (so they can
 * sit in a Flink configuration beside other keys). SQL names them by their short key
 * ({@link #sqlKey}: {@code 'default-sla'}, {@code 'system-prompt'}), as Flink's model providers do
 * in {@code CREATE MODEL ... WITH}; a DataStream {@link org.apache.flink.configuration.Configuration}
 * still accepts the short keys, as deprecated keys.
 */
public final class Qwen3Options {
    private Qwen3Options() {}

    /** Every option, in the order they are declared here. */
    public static List<ConfigOption<?>> all() {
        List<ConfigOption<?>> all = new ArrayList<>();
        for (Field f : Qwen3Options.class.getFields()) {
            if (Modifier.isStatic(f.getModifiers()) && f.getType() == ConfigOption.class) {
                try {
                    all.add((ConfigOption<?>) f.get(null));
                } catch (IllegalAccessException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        return all;
    }

    /** The engine settings these options ask for (those that matter when the task manager's engine is opened). */
    public static EngineOptions engineOptions(ReadableConfig options) {
        return new EngineOptions(options.get(THREADS), options.get(MAX_BATCH_SEQUENCES), 512, options.get(MAX_CONTEXT),
                options.getOptional(QUANTIZE).map(QuantizedCheckpoint::parseFormat).orElse(null), options.get(EXPERT_SHARDS))
                .withKvCache(options.getOptional(KV_CACHE_MEMORY).map(MemorySize::getBytes).orElse(0L), KvBlockPool.Precision.BF16,
                        true);
    }

    /** The 'labels' option as a list (null when unset); IllegalArgumentException saying what is wrong with it. */
    public static List<String> labels(ReadableConfig options) {
        return labels(options, "option '" + sqlKey(LABELS) + "'");
    }

    private static List<String> labels(ReadableConfig options, String name) {
        String json = options.getOptional(LABELS).orElse(null);
        if (json == null) {
            return null;
        }
        JsonNode array;
        try {
            array = RecordCodec.JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(name + " is not JSON: " + e.getOriginalMessage()
                    + " (expected a JSON array of strings, e.g. [\"positive\", \"negative\"])");
        }
        if (array == null || !array.isArray()) {
            throw new IllegalArgumentException(name + " must be a JSON array of strings, e.g. [\"positive\", \"negative\"], got "
                    + RequestBuilder.quote(json));
        }
        List<String> labels = new ArrayList<>();
        for (int i = 0; i < array.size(); i++) {
            if (!array.get(i).isTextual()) {
                throw new IllegalArgumentException(name + ": labels[" + i + "] is " + array.get(i) + ", expected a string");
            }
            labels.add(array.get(i).asText());
        }
        try {
            return Labels.validate(labels);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
        }
    }

    /**
     * Whether a result is a classification whose most probable label has a probability below
     * 'min-confidence' (the operator sends it to {@link Qwen3Inference#LOW_CONFIDENCE}, SQL gives a NULL label).
     */
    public static boolean lowConfidence(GenerationResult result, ReadableConfig options) {
        return result.label() != null && result.labelProbabilities().get(result.label()) < options.get(MIN_CONFIDENCE);
    }

    /** The key SQL knows this option by ({@code CREATE MODEL ... WITH}, the QWEN3_* functions' MAP). */
    public static String sqlKey(ConfigOption<?> option) {
        Iterator<FallbackKey> keys = option.fallbackKeys().iterator(); // each option has one: its short key
        if (!keys.hasNext()) {
            throw new IllegalStateException("option '" + option.key() + "' has no short key");
        }
        return keys.next().getKey();
    }

    /**
     * Checks every value against its range (the same ranges a record's own options are checked
     * against); IllegalArgumentException naming the option by its key, what it must be and what it is.
     */
    public static void validate(ReadableConfig options) {
        validate(options, ConfigOption::key);
    }

    /** {@link #validate(ReadableConfig)}, the options named by {@code keys} (SQL: {@link #sqlKey}). */
    public static void validate(ReadableConfig options, Function<ConfigOption<?>, String> keys) {
        Function<ConfigOption<?>, String> name = option -> "option '" + keys.apply(option) + "'";
        int threads = options.get(THREADS);
        int maxThreads = Math.max(Parallel.MAX_THREADS, Runtime.getRuntime().availableProcessors());
        if (threads < 1 || threads > maxThreads) { // the task manager also checks against its own processors
            throw new IllegalArgumentException(name.apply(THREADS) + " must be between 1 and " + maxThreads + " (and at most "
                    + Parallel.THREADS_PER_PROCESSOR + " per processor of the task manager), got " + threads);
        }
        atLeast(options, EXPERT_SHARDS, 0, name);
        atLeast(options, MAX_BATCH_SEQUENCES, 1, name);
        atLeast(options, MAX_CONTEXT, 0, name);
        atLeast(options, MAX_IN_FLIGHT, 1, name);
        atLeast(options, DEFAULT_MAX_TOKENS, 1, name);
        options.getOptional(THINKING_BUDGET).filter(b -> b < -1).ifPresent(b -> {
            throw new IllegalArgumentException(name.apply(THINKING_BUDGET) + " must be >= -1 (-1: unlimited), got " + b);
        });
        atLeast(options, ANSWER_RESERVE_TOKENS, 0, name);
        options.getOptional(KV_CACHE_MEMORY).filter(m -> m.getBytes() <= 0).ifPresent(m -> {
            throw new IllegalArgumentException(name.apply(KV_CACHE_MEMORY) + " must be more than 0 bytes (leave it unset for "
                    + "the default), got " + m);
        });
        double minConfidence = options.get(MIN_CONFIDENCE);
        if (!(minConfidence >= 0 && minConfidence <= 1)) {
            throw new IllegalArgumentException(name.apply(MIN_CONFIDENCE) + " must be between 0 and 1, got " + minConfidence);
        }
        Duration sla = options.get(DEFAULT_SLA);
        if (sla.isNegative() || sla.compareTo(Duration.ofMillis(Long.MAX_VALUE)) > 0) {
            throw new IllegalArgumentException(name.apply(DEFAULT_SLA) + " must be between 0 and "
                    + Long.MAX_VALUE + " ms, got " + sla);
        }
        options.getOptional(TEMPERATURE).ifPresent(t -> RequestBuilder.temperature(name.apply(TEMPERATURE), t));
        options.getOptional(TOP_P).ifPresent(p -> RequestBuilder.topP(name.apply(TOP_P), p));
        options.getOptional(TOP_K).ifPresent(k -> RequestBuilder.topK(name.apply(TOP_K), k));
        RequestBuilder.presencePenalty(name.apply(PRESENCE_PENALTY), options.get(PRESENCE_PENALTY));
        options.getOptional(QUANTIZE).ifPresent(QuantizedCheckpoint::parseFormat);
        options.getOptional(JSON_SCHEMA).ifPresent(schema -> {
            try {
                JsonSchemaGrammar.compile(schema);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(name.apply(JSON_SCHEMA) + " cannot be used: " + e.getMessage(), e);
            }
        });
        if (labels(options, name.apply(LABELS)) != null && options.getOptional(JSON_SCHEMA).isPresent()) {
            throw new IllegalArgumentException("give either " + name.apply(LABELS) + " (classify) or " + name.apply(JSON_SCHEMA)
                    + " (structured answer), not both");
        }
    }

    private static void atLeast(ReadableConfig options, ConfigOption<Integer> option, int min, Function<ConfigOption<?>, String> name) {
        int value = options.get(option);
        if (value < min) {
            throw new IllegalArgumentException(name.apply(option) + " must be >= " + min + ", got " + value);
        }
    }

    public static final ConfigOption<String> MODEL = ConfigOptions.key("qwen3.model.location")
            .stringType().noDefaultValue().withDeprecatedKeys("model")
            .withDescription("Model location: a Hugging Face model directory, a .gguf file, or a Hugging Face repo id "
                    + "such as Qwen/Qwen3-0.6B (downloaded into the HF cache of each task manager).");

    public static final ConfigOption<String> QUANTIZE = ConfigOptions.key("qwen3.model.quantize")
            .stringType().noDefaultValue().withDeprecatedKeys("quantize")
            .withDescription("Convert BF16/F16/F32 weights at load time, once per task manager: q8_0 or q4_0.");

    public static final ConfigOption<Integer> THREADS = ConfigOptions.key("qwen3.engine.threads")
            .intType().defaultValue(Runtime.getRuntime().availableProcessors()).withDeprecatedKeys("threads")
            .withDescription("Kernel worker threads of the task manager's shared engine (default: available processors; "
                    + "at most 4 per processor and 256).");

    public static final ConfigOption<Integer> EXPERT_SHARDS = ConfigOptions.key("qwen3.engine.expert-shards")
            .intType().defaultValue(0).withDeprecatedKeys("expert-shards")
            .withDescription("MoE models: shards the experts of each layer are split into, balanced by measured routing "
                    + "load, each run by one kernel thread per step (0: one per kernel thread).");

    public static final ConfigOption<Integer> MAX_BATCH_SEQUENCES = ConfigOptions.key("qwen3.engine.max-batch-sequences")
            .intType().defaultValue(32).withDeprecatedKeys("max-batch-sequences")
            .withDescription("Requests decoded together in one engine step (across all slots of the task manager).");

    public static final ConfigOption<Integer> MAX_CONTEXT = ConfigOptions.key("qwen3.engine.max-context")
            .intType().defaultValue(4096).withDeprecatedKeys("max-context")
            .withDescription("Maximum prompt plus output tokens per request (0: the model's maximum); longer prompts go "
                    + "to the dead-letter output.");

    public static final ConfigOption<MemorySize> KV_CACHE_MEMORY = ConfigOptions.key("qwen3.engine.kv-cache-memory")
            .memoryType().noDefaultValue().withDeprecatedKeys("kv-cache-memory")
            .withDescription("Memory of the task manager's KV cache, shared by all its requests (keys and values in bfloat16, "
                    + "blocks of 64 positions, with the prefix cache); requests that do not fit wait (backpressure). Default: "
                    + "room for 1024 positions of each of max-batch-sequences and at least one whole max-context, from the "
                    + "model's size per position (Qwen3-0.6B: 112 KiB; 32 sequences: 3.5 GiB). Set by the first job to open "
                    + "the engine.");

    public static final ConfigOption<Integer> MAX_IN_FLIGHT = ConfigOptions.key("qwen3.operator.max-in-flight")
            .intType().defaultValue(16).withDeprecatedKeys("max-in-flight")
            .withDescription("Requests a subtask keeps in flight; when full it stops taking input (backpressure).");

    public static final ConfigOption<Duration> DEFAULT_SLA = ConfigOptions.key("qwen3.sla.default")
            .durationType().defaultValue(Duration.ofSeconds(30)).withDeprecatedKeys("default-sla")
            .withDescription("Latency SLA of records that carry neither sla_ms nor deadline_ms. In SQL (no default there): "
                    + "each row's SLA, so rows are scheduled by deadline with the DataStream records of the engine (without "
                    + "it they go behind them), sla_met is reported, and without 'thinking-budget' the SLA sets the budget.");

    public static final ConfigOption<Integer> DEFAULT_MAX_TOKENS = ConfigOptions.key("qwen3.generation.max-tokens")
            .intType().defaultValue(256).withDeprecatedKeys("default-max-tokens")
            .withDescription("Generated tokens (thinking plus answer) for records without max_tokens.");

    public static final ConfigOption<Boolean> THINKING = ConfigOptions.key("qwen3.thinking.enabled")
            .booleanType().defaultValue(true).withDeprecatedKeys("thinking")
            .withDescription("Whether records may think at all; false answers every record in non-thinking mode.");

    public static final ConfigOption<Integer> THINKING_BUDGET = ConfigOptions.key("qwen3.thinking.budget")
            .intType().noDefaultValue().withDeprecatedKeys("thinking-budget")
            .withDescription("Thinking budget of SQL rows: -1 thinks without limit, N > 0 stops thinking after N tokens, 0 "
                    + "answers without thinking. Unset: what 'default-sla' leaves (as for DataStream records), or 0 without it.");

    public static final ConfigOption<Integer> ANSWER_RESERVE_TOKENS = ConfigOptions.key("qwen3.sla.answer-reserve-tokens")
            .intType().defaultValue(32).withDeprecatedKeys("answer-reserve-tokens")
            .withDescription("Decode steps the SLA policy keeps free for the answer after thinking.");

    public static final ConfigOption<Double> TEMPERATURE = ConfigOptions.key("qwen3.generation.temperature")
            .doubleType().noDefaultValue().withDeprecatedKeys("temperature")
            .withDescription("Sampling temperature, 0 (greedy) to 100; default: Qwen's recommendation for the mode.");

    public static final ConfigOption<Double> TOP_P = ConfigOptions.key("qwen3.generation.top-p")
            .doubleType().noDefaultValue().withDeprecatedKeys("top-p").withDescription("Nucleus sampling mass, > 0 and <= 1; default: Qwen's recommendation.");

    public static final ConfigOption<Integer> TOP_K = ConfigOptions.key("qwen3.generation.top-k")
            .intType().noDefaultValue().withDeprecatedKeys("top-k").withDescription("Top-k candidates (0: all); default: 20.");

    public static final ConfigOption<Double> PRESENCE_PENALTY = ConfigOptions.key("qwen3.generation.presence-penalty")
            .doubleType().defaultValue(0.0).withDeprecatedKeys("presence-penalty").withDescription("Presence penalty, -2 to 2 (Qwen suggests up to 1.5 against repetition).");

    public static final ConfigOption<Boolean> ORDERED = ConfigOptions.key("qwen3.operator.ordered")
            .booleanType().defaultValue(false).withDeprecatedKeys("ordered")
            .withDescription("Emit completions in input order (true) or as soon as each is done (false, default).");

    public static final ConfigOption<Double> MIN_CONFIDENCE = ConfigOptions.key("qwen3.generation.min-confidence")
            .doubleType().defaultValue(0.0).withDeprecatedKeys("min-confidence")
            .withDescription("Classifications (records with labels, SQL 'labels'): a record whose most probable label has a "
                    + "lower probability goes to the LOW_CONFIDENCE side output instead of the completions; in SQL its label is "
                    + "NULL (QWEN3_CLASSIFY: ''). 0 to 1.");

    public static final ConfigOption<String> SYSTEM_PROMPT = ConfigOptions.key("qwen3.generation.system-prompt")
            .stringType().noDefaultValue().withDeprecatedKeys("system-prompt")
            .withDescription("SQL: the system turn before every row's text.");

    public static final ConfigOption<String> JSON_SCHEMA = ConfigOptions.key("qwen3.generation.json-schema")
            .stringType().noDefaultValue().withDeprecatedKeys("json-schema")
            .withDescription("SQL: a JSON Schema (JSON text) every answer satisfies: decoding is constrained token by token, "
                    + "so the answer column holds JSON that parses and validates.");

    public static final ConfigOption<String> LABELS = ConfigOptions.key("qwen3.generation.labels")
            .stringType().noDefaultValue().withDeprecatedKeys("labels")
            .withDescription("SQL: classify every row instead of generating: a JSON array of 2 to 512 distinct non-empty labels, "
                    + "e.g. '[\"positive\", \"negative\"]'. The label column gets the most probable one, label_probabilities "
                    + "each label's probability (the labels are scored, no text is generated).");

    /**
     * Options of the DataStream operator that SQL has no use for: Flink's async operators run the
     * rows with their own capacity and output order.
     */
    public static final Set<ConfigOption<?>> DATASTREAM_ONLY = Set.of(MAX_IN_FLIGHT, ORDERED);

    /** Options only SQL reads: DataStream records carry these themselves, and get their budget from their SLA. */
    public static final Set<ConfigOption<?>> SQL_ONLY = Set.of(THINKING_BUDGET, SYSTEM_PROMPT, JSON_SCHEMA, LABELS);
}
