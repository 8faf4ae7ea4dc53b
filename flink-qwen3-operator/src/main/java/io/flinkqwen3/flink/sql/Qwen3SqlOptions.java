package io.flinkqwen3.flink.sql;

import io.flinkqwen3.flink.Qwen3Options;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;

/**
 * The options of Flink SQL's Qwen3 model ({@code CREATE MODEL ... WITH (...)}) and of the
 * {@code QWEN3_*} functions' options MAP: every {@link Qwen3Options} option but
 * {@link Qwen3Options#DATASTREAM_ONLY}, which are refused with what SQL has instead, each by its
 * short key ({@link Qwen3Options#sqlKey}).
 */
final class Qwen3SqlOptions {
    private Qwen3SqlOptions() {}

    /** What SQL offers instead of each DataStream-only option. */
    private static final Map<String, String> INSTEAD = Map.of(
            Qwen3Options.sqlKey(Qwen3Options.MAX_IN_FLIGHT), "rows in flight are ML_PREDICT's 'max-concurrent-operations' "
                    + "(table.exec.async-ml-predict.max-concurrent-operations; table.exec.async-scalar.max-concurrent-operations "
                    + "for the QWEN3_* functions)",
            Qwen3Options.sqlKey(Qwen3Options.ORDERED), "the order of rows is ML_PREDICT's 'output-mode' (table.exec.async-ml-predict.output-mode)");

    /** The options SQL takes, in Qwen3Options' order. */
    static List<ConfigOption<?>> options() {
        return Qwen3Options.all().stream().filter(o -> !Qwen3Options.DATASTREAM_ONLY.contains(o)).toList();
    }

    /**
     * The options as a Configuration, every value parsed and range-checked; IllegalArgumentException
     * naming the option, what it must be and what it is. {@code ignored} keys (such as 'provider')
     * are skipped.
     */
    static Configuration parse(Map<String, String> raw, String... ignored) {
        var known = new LinkedHashMap<String, ConfigOption<?>>();
        options().forEach(o -> known.put(Qwen3Options.sqlKey(o), o));
        var options = new Configuration();
        for (var e : raw.entrySet()) {
            if (Set.of(ignored).contains(e.getKey())) {
                continue;
            }
            if (Qwen3Options.DATASTREAM_ONLY.stream().anyMatch(o -> Qwen3Options.sqlKey(o).equals(e.getKey()))) {
                throw new IllegalArgumentException("option '" + e.getKey() + "' applies to the DataStream operator only; in SQL, "
                        + INSTEAD.getOrDefault(e.getKey(), "it has no counterpart") + ". Options here: " + new TreeSet<>(known.keySet()));
            }
            ConfigOption<?> option = known.get(e.getKey());
            if (option == null) {
                throw new IllegalArgumentException("unknown option '" + e.getKey() + "' (known: " + new TreeSet<>(known.keySet()) + ")");
            }
            if (e.getValue() == null) {
                throw new IllegalArgumentException("option '" + e.getKey() + "' is NULL");
            }
            options.setString(option.key(), e.getValue());
            try {
                options.getOptional(option); // parses the value
            } catch (IllegalArgumentException notParsed) {
                throw new IllegalArgumentException("option '" + e.getKey() + "' has an invalid value '" + e.getValue() + "' ("
                        + notParsed.getMessage() + ")", notParsed);
            }
        }
        if (options.getOptional(Qwen3Options.MODEL).isEmpty()) {
            throw new IllegalArgumentException("option '" + Qwen3Options.sqlKey(Qwen3Options.MODEL)
                    + "' is required: a model directory, a .gguf file or a Hugging Face repo id");
        }
        Qwen3Options.validate(options, Qwen3Options::sqlKey);
        return options;
    }
}
