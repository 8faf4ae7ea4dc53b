package io.flinkqwen3.flink.sql;

import io.flinkqwen3.flink.Qwen3Options;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;

/**
 * The options of Flink SQL's Qwen3 model ({@code CREATE MODEL ... WITH (...)}) and of the
 * {@code QWEN3_*} functions' options MAP: the {@link Qwen3Options} that make sense per model, plus
 * SQL's own (a row has only its text, so the rest of a request comes from here). Options that only
 * the DataStream operator has are refused with what to use instead.
 */
public final class Qwen3SqlOptions {
    private Qwen3SqlOptions() {}

    public static final ConfigOption<String> SYSTEM_PROMPT = ConfigOptions.key("system-prompt")
            .stringType().noDefaultValue()
            .withDescription("System turn put before every row's text.");

    /** Per model: engine, scheduling, thinking and sampling options (the keys are Qwen3Options'). */
    static final List<ConfigOption<?>> OPTIONS = List.of(Qwen3Options.MODEL, Qwen3Options.QUANTIZE, Qwen3Options.THREADS,
            Qwen3Options.EXPERT_SHARDS, Qwen3Options.MAX_BATCH_SEQUENCES, Qwen3Options.MAX_CONTEXT, Qwen3Options.DEFAULT_SLA,
            Qwen3Options.DEFAULT_MAX_TOKENS, Qwen3Options.THINKING, Qwen3Options.THINKING_BUDGET,
            Qwen3Options.ANSWER_RESERVE_TOKENS, Qwen3Options.TEMPERATURE, Qwen3Options.TOP_P, Qwen3Options.TOP_K,
            Qwen3Options.PRESENCE_PENALTY, SYSTEM_PROMPT);

    /** Qwen3Options that only the DataStream operator has, and what SQL offers instead. */
    static final Map<String, String> DATASTREAM_ONLY = Map.of(
            Qwen3Options.MAX_IN_FLIGHT.key(), "rows in flight are ML_PREDICT's 'max-concurrent-operations' "
                    + "(table.exec.async-ml-predict.max-concurrent-operations; table.exec.async-scalar.max-concurrent-operations "
                    + "for the QWEN3_* functions)",
            Qwen3Options.ORDERED.key(), "the order of rows is ML_PREDICT's 'output-mode' (table.exec.async-ml-predict.output-mode)");

    /**
     * The options as a Configuration, every value parsed and range-checked; IllegalArgumentException
     * naming the option, what it must be and what it is. {@code ignored} keys (such as 'provider')
     * are skipped.
     */
    static Configuration parse(Map<String, String> raw, String... ignored) {
        var known = new LinkedHashMap<String, ConfigOption<?>>();
        OPTIONS.forEach(o -> known.put(o.key(), o));
        var options = new Configuration();
        outer:
        for (var e : raw.entrySet()) {
            for (String skip : ignored) {
                if (skip.equals(e.getKey())) {
                    continue outer;
                }
            }
            String instead = DATASTREAM_ONLY.get(e.getKey());
            if (instead != null) {
                throw new IllegalArgumentException("option '" + e.getKey() + "' is DataStream-only (Qwen3Inference); in SQL, "
                        + instead);
            }
            if (!known.containsKey(e.getKey())) {
                throw new IllegalArgumentException("unknown option '" + e.getKey() + "' (known: " + new TreeSet<>(known.keySet()) + ")");
            }
            if (e.getValue() == null) {
                throw new IllegalArgumentException("option '" + e.getKey() + "' is null");
            }
            options.setString(e.getKey(), e.getValue());
        }
        if (options.getOptional(Qwen3Options.MODEL).isEmpty()) {
            throw new IllegalArgumentException("option 'model' is required: a model directory, a .gguf file or a Hugging Face repo id");
        }
        for (ConfigOption<?> option : known.values()) {
            options.getOptional(option); // parses the value: "Could not parse value 'x' for key 'threads'" otherwise
        }
        Qwen3Options.validate(options);
        return options;
    }
}
