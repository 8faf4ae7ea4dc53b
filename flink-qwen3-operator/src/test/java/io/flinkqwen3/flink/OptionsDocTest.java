package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.ParameterizedType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.description.HtmlFormatter;
import org.apache.flink.util.TimeUtils;
import org.junit.jupiter.api.Test;

/**
 * docs/options.md is generated from {@link Qwen3Options}: this test fails when it is out of date, and
 * with {@code -Dqwen3.writeDocs=true} rewrites it.
 */
class OptionsDocTest {
    static final Path DOC = Path.of("..", "docs", "options.md").toAbsolutePath().normalize();
    /** Defaults that depend on the machine the class is loaded on. */
    static final Map<String, String> DEFAULTS = Map.of(Qwen3Options.THREADS.key(), "the task manager's processors",
            Qwen3Options.KV_CACHE_MEMORY.key(), "from the model and max-batch-sequences");

    static String render() throws Exception {
        var sb = new StringBuilder("""
                # Options

                Every option of the Qwen3 operator and the SQL model provider. Set them on the builder,
                `Qwen3Inference.builder().option(Qwen3Options.DEFAULT_SLA, Duration.ofSeconds(5))`, or as strings in
                `CREATE MODEL ... WITH ('default-sla' = '5s')` (durations as Flink writes them: `500ms`, `5s`, `1min`).
                Ranges are checked when the job is built (`Qwen3Inference.Builder.build()`, `CREATE MODEL` when planned).

                <!-- Generated from Qwen3Options by OptionsDocTest; to rewrite after changing an option:
                     mvn -B -o -pl flink-qwen3-operator test -Dtest=OptionsDocTest -Dqwen3.writeDocs=true -->

                | Key | Type | Default | Applies to | Description |
                |---|---|---|---|---|
                """);
        for (ConfigOption<?> option : Qwen3Options.all()) {
            var field = Qwen3Options.class.getField(fieldName(option));
            var type = ((Class<?>) ((ParameterizedType) field.getGenericType()).getActualTypeArguments()[0]).getSimpleName();
            String scope = Qwen3Options.DATASTREAM_ONLY.contains(option) ? "DataStream"
                    : Qwen3Options.SQL_ONLY.contains(option) ? "SQL" : "DataStream, SQL";
            sb.append("| `").append(option.key()).append("` | ").append(type).append(" | ").append(defaultValue(option))
                    .append(" | ").append(scope).append(" | ").append(description(option))
                    .append(" |\n");
        }
        return sb.toString();
    }

    /** The description as plain text (Flink formats descriptions as HTML). */
    private static String description(ConfigOption<?> option) {
        return new HtmlFormatter().format(option.description()).replace("&lt;", "<").replace("&gt;", ">")
                .replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&").replace("|", "\\|");
    }

    private static String fieldName(ConfigOption<?> option) throws IllegalAccessException {
        for (var f : Qwen3Options.class.getFields()) {
            if (f.get(null) == option) {
                return f.getName();
            }
        }
        throw new IllegalStateException(option.key());
    }

    private static String defaultValue(ConfigOption<?> option) {
        if (DEFAULTS.containsKey(option.key())) {
            return DEFAULTS.get(option.key());
        }
        if (!option.hasDefaultValue()) {
            return option == Qwen3Options.MODEL ? "(required)" : "(none)";
        }
        Object v = option.defaultValue();
        return "`" + (v instanceof Duration d ? TimeUtils.formatWithHighestUnit(d) : String.valueOf(v)) + "`";
    }

    @Test
    void docsOptionsMdListsEveryOptionAsDeclared() throws Exception {
        String expected = render();
        if (Boolean.getBoolean("qwen3.writeDocs")) {
            Files.writeString(DOC, expected);
        }
        assertTrue(Files.exists(DOC), DOC + " missing");
        assertEquals(expected, Files.readString(DOC), DOC + " is out of date: regenerate it with "
                + "mvn -B -o -pl flink-qwen3-operator test -Dtest=OptionsDocTest -Dqwen3.writeDocs=true");
    }
}
