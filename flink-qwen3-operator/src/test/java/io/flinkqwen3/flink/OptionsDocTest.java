package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.reflect.ParameterizedType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
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

    /** The groups of keys ({@code qwen3.GROUP.name}), in the order docs/options.md lists them, with what they are. */
    static final Map<String, String> GROUPS = new LinkedHashMap<>();
    static {
        GROUPS.put("model", "## Model\n\nWhat is loaded. A task manager shares one engine among every operator and SQL model with "
                + "the same model, `quantize` and `max-context`.");
        GROUPS.put("engine", "## Engine\n\nThe task manager's shared engine; the operator or model that opens it sets these.");
        GROUPS.put("generation", "## Generation\n\nDefaults for each request; a DataStream record's own `max_tokens` and `options` "
                + "override them.");
        GROUPS.put("sla", "## SLA\n\nDeadlines and the thinking budget they leave (README, *SLA → thinking budget*).");
        GROUPS.put("thinking", "## Thinking");
        GROUPS.put("operator", "## DataStream operator\n\nSQL refuses these by name, with what it has instead.");
    }

    static String render() throws Exception {
        var sb = new StringBuilder("""
                # Options

                Every option of the Qwen3 operator and the SQL model provider, by group. DataStream jobs set them
                on the builder, `Qwen3Inference.builder().option(Qwen3Options.DEFAULT_SLA, Duration.ofSeconds(5))`,
                or as a Flink `Configuration` with the keys below (`.options(configuration)`; the SQL keys are
                accepted there too, as deprecated keys). SQL names them by their short keys, as Flink's model
                providers do: `CREATE MODEL ... WITH ('default-sla' = '5s')`, and the same keys in the options
                MAP of `QWEN3_COMPLETE` / `QWEN3_CLASSIFY`. Values are strings there (durations as Flink writes
                them: `500ms`, `5s`, `1min`). A key marked — does not apply to that API and is refused there by
                name. Ranges are checked when the job is built (`Qwen3Inference.Builder.build()`, `CREATE MODEL`
                when planned).

                <!-- Generated from Qwen3Options by OptionsDocTest; to rewrite after changing an option:
                     mvn -B -o -pl flink-qwen3-operator test -Dtest=OptionsDocTest -Dqwen3.writeDocs=true -->
                """);
        for (var group : GROUPS.entrySet()) {
            sb.append('\n').append(group.getValue()).append("\n\n")
                    .append("| DataStream key | SQL key | Type | Default | Description |\n|---|---|---|---|---|\n");
            for (ConfigOption<?> option : Qwen3Options.all()) {
                if (!option.key().startsWith("qwen3." + group.getKey() + ".")) {
                    continue;
                }
                var field = Qwen3Options.class.getField(fieldName(option));
                var type = ((Class<?>) ((ParameterizedType) field.getGenericType()).getActualTypeArguments()[0]).getSimpleName();
                String dataStream = Qwen3Options.SQL_ONLY.contains(option) ? "— (SQL only)" : "`" + option.key() + "`";
                String sql = Qwen3Options.DATASTREAM_ONLY.contains(option) ? "— (DataStream only)" : "`" + Qwen3Options.sqlKey(option) + "`";
                sb.append("| ").append(dataStream).append(" | ").append(sql).append(" | ").append(type).append(" | ")
                        .append(defaultValue(option)).append(" | ").append(description(option)).append(" |\n");
            }
        }
        return sb.toString();
    }

    @Test
    void everyOptionIsInAGroupAndHasOneShortKey() {
        for (ConfigOption<?> option : Qwen3Options.all()) {
            String[] parts = option.key().split("\\.");
            assertEquals(3, parts.length, option.key() + ": qwen3.GROUP.name");
            assertEquals("qwen3", parts[0], option.key());
            assertTrue(GROUPS.containsKey(parts[1]), option.key() + ": group " + parts[1] + " is not one of " + GROUPS.keySet());
            int shortKeys = 0;
            for (var key : option.fallbackKeys()) {
                assertTrue(key.isDeprecated() && !key.getKey().contains("."), option.key() + ": " + key);
                shortKeys++;
            }
            assertEquals(1, shortKeys, option.key());
        }
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
