package io.flinkqwen3.flink.sql;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.Fixtures;
import io.flinkqwen3.testing.SchemaCheck;
import io.flinkqwen3.tokenizer.ChatMessage;
import io.flinkqwen3.tokenizer.ChatTemplate;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/**
 * Flink SQL's ML_PREDICT with 'provider' = 'qwen3' and the QWEN3_* functions, planned and run by
 * the real planner on a local cluster with the MoE fixture model.
 */
class MlPredictTest {
    static final String SYSTEM = "You label product reviews.";
    /** The same options for ML_PREDICT and the functions: they must then give the same answers. */
    static final Map<String, String> OPTIONS = new LinkedHashMap<>(Map.of("model", Fixtures.MOE.toString(), "threads", "2",
            "default-max-tokens", "5", "system-prompt", SYSTEM, "default-sla", "1 min", "temperature", "1.0"));
    static final String REVIEW = "Classify: the battery died after two days.";

    static TableEnvironment tableEnv() {
        var env = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        env.getConfig().set("parallelism.default", "1");
        // rows 1 and 4 are the same text: sampled with the same seed, they get the same answer
        env.executeSql("CREATE TEMPORARY VIEW prompts AS SELECT * FROM (VALUES "
                + "(1, '" + REVIEW + "'), (2, 'Name a prime number.'), (3, ''), (4, '" + REVIEW + "')) AS t(id, prompt)");
        return env;
    }

    static String with(Map<String, String> options) {
        return options.entrySet().stream().map(e -> "'" + e.getKey() + "' = '" + e.getValue() + "'").collect(Collectors.joining(", "));
    }

    static String map(Map<String, String> options) {
        return "MAP[" + options.entrySet().stream().map(e -> "'" + e.getKey() + "', '" + e.getValue().replace("'", "''") + "'")
                .collect(Collectors.joining(", ")) + "]";
    }

    static Map<Integer, Row> collect(TableEnvironment env, String query) throws Exception {
        Map<Integer, Row> rows = new HashMap<>();
        try (var it = env.executeSql(query).collect()) {
            it.forEachRemaining(r -> rows.put((Integer) r.getField(0), r));
        }
        return rows;
    }

    @Test
    void everyRowIsAnsweredAndAReplayGetsTheSameAnswers() throws Exception {
        var env = tableEnv();
        env.executeSql("CREATE MODEL qwen INPUT (prompt STRING) OUTPUT (answer STRING, finish_reason STRING, prompt_tokens INT, "
                + "answer_tokens INT, thinking_budget INT, latency_ms BIGINT, sla_met BOOLEAN) WITH ('provider' = 'qwen3', "
                + with(OPTIONS) + ")");
        env.createTemporarySystemFunction("QWEN3_COMPLETE", new Qwen3Complete(OPTIONS));
        env.executeSql("CREATE TEMPORARY FUNCTION COMPLETE_WITH_MAP AS '" + Qwen3Complete.class.getName() + "'");
        var structured = new LinkedHashMap<>(OPTIONS);
        structured.put("json-schema", SchemaCheck.schema("person.json"));
        structured.put("default-max-tokens", "48");
        // a fixed budget: one from 'default-sla' depends on the engine's measured speed, so a replay could think differently
        structured.put("thinking-budget", "0");
        String query = "SELECT id, answer, finish_reason, prompt_tokens, answer_tokens, thinking_budget, latency_ms, sla_met, "
                + "QWEN3_COMPLETE(prompt), COMPLETE_WITH_MAP(prompt, " + map(OPTIONS) + "), "
                + "COMPLETE_WITH_MAP(prompt, " + map(structured) + ") "
                + "FROM ML_PREDICT(TABLE prompts, MODEL qwen, DESCRIPTOR(prompt))";
        Map<Integer, Row> first = collect(env, query);

        assertEquals(4, first.size(), first.toString());
        var tokenizer = Qwen3Tokenizer.load(Fixtures.MOE.resolve("tokenizer.json"));
        int promptTokens = tokenizer.encode(ChatTemplate.render(List.of(ChatMessage.system(SYSTEM), ChatMessage.user(REVIEW)),
                true, false)).length;
        for (int id : new int[] {1, 2, 4}) {
            Row r = first.get(id);
            assertEquals("length", r.getField(2), r.toString());
            assertEquals(5, r.getField(4), r.toString());
            assertEquals(0, r.getField(5), "5 tokens leave no room to think: " + r);
            assertEquals((Long) r.getField(6) <= 60_000, r.getField(7), "sla_met is latency_ms <= default-sla: " + r);
            assertTrue(!((String) r.getField(1)).isEmpty(), r.toString());
            // the three ways to call the model give the same answer (same options, same seed from the row)
            assertEquals(r.getField(1), r.getField(8), "QWEN3_COMPLETE vs ML_PREDICT: " + r);
            assertEquals(r.getField(1), r.getField(9), "QWEN3_COMPLETE with a MAP vs ML_PREDICT: " + r);
            assertNull(SchemaCheck.problem(structured.get("json-schema"), (String) r.getField(10)), "'json-schema': " + r);
        }
        assertEquals(promptTokens, first.get(1).getField(3), "the system prompt is the first turn");
        assertEquals(first.get(1).getField(1), first.get(4).getField(1), "the same text gets the same answer");
        Row bad = first.get(3);
        assertTrue(((String) bad.getField(2)).startsWith("error: missing prompt"), bad.toString());
        assertEquals("", bad.getField(8), "QWEN3_COMPLETE returns '' for a text it cannot answer");

        Map<Integer, Row> replay = collect(env, query);
        for (int id : new int[] {1, 2, 4}) {
            for (int column : new int[] {1, 8, 9, 10}) {
                assertEquals(first.get(id).getField(column), replay.get(id).getField(column), "replayed row " + id);
            }
        }
    }

    @Test
    void labelsClassifyEveryRowAndMinConfidenceLeavesTheLabelNull() throws Exception {
        var env = tableEnv();
        var options = new LinkedHashMap<>(OPTIONS);
        options.put("labels", "[\"positive\", \"negative\", \"a prime, maybe\"]");
        options.put("min-confidence", "0.9");
        env.executeSql("CREATE MODEL sorter INPUT (prompt STRING) OUTPUT (label STRING, label_probabilities MAP<STRING, DOUBLE>, "
                + "answer STRING, finish_reason STRING, answer_tokens INT) WITH ('provider' = 'qwen3', " + with(options) + ")");
        env.createTemporarySystemFunction("QWEN3_CLASSIFY", new Qwen3Classify(OPTIONS));
        Map<Integer, Row> rows = collect(env, "SELECT id, label, label_probabilities, answer, finish_reason, answer_tokens "
                + "FROM ML_PREDICT(TABLE prompts, MODEL sorter, DESCRIPTOR(prompt))");
        // in a query of its own: Flink 2.2 turns the NULLs of the whole row into '' when an async scalar function is in it
        Map<Integer, Row> classified = collect(env, "SELECT id, QWEN3_CLASSIFY(prompt, ARRAY['positive', 'negative', "
                + "'a prime, maybe'], MAP['min-confidence', '0.9']) FROM prompts");
        assertEquals(4, rows.size(), rows.toString());
        for (int id : new int[] {1, 2, 4}) {
            Row r = rows.get(id);
            @SuppressWarnings("unchecked")
            Map<String, Double> p = (Map<String, Double>) r.getField(2);
            assertEquals(Set.of("positive", "negative", "a prime, maybe"), p.keySet(), r.toString());
            assertEquals(1.0, p.values().stream().mapToDouble(Double::doubleValue).sum(), 1e-6, r.toString());
            var best = p.entrySet().stream().max(Map.Entry.comparingByValue()).orElseThrow();
            assertEquals(best.getKey(), r.getField(3), "the answer is the best label: " + r);
            assertEquals(0, r.getField(5), "nothing is generated: " + r);
            assertEquals(best.getValue() < 0.9 ? null : best.getKey(), r.getField(1), "NULL below min-confidence: " + r);
            assertEquals(best.getValue() < 0.9 ? "" : best.getKey(), classified.get(id).getField(1),
                    "QWEN3_CLASSIFY: '' below min-confidence, else what ML_PREDICT gives: " + r);
        }
        @SuppressWarnings("unchecked")
        Map<String, Double> first = (Map<String, Double>) rows.get(1).getField(2);
        @SuppressWarnings("unchecked")
        Map<String, Double> same = (Map<String, Double>) rows.get(4).getField(2);
        // batched with other rows or not, the bf16 sums may differ in their last bits
        first.forEach((label, p) -> assertEquals(p, same.get(label), 1e-4, "the same text, the same probabilities"));
        assertTrue(((String) rows.get(3).getField(4)).startsWith("error: missing prompt"), rows.get(3).toString());
        assertNull(rows.get(3).getField(1));
    }

    @Test
    void aRowPastItsTimeoutGetsFinishReasonTimeoutAndTheQueryGoesOn() throws Exception {
        var env = tableEnv();
        // up to the whole 4096-token context: far longer than the 2 s timeout
        env.executeSql("CREATE MODEL endless INPUT (prompt STRING) OUTPUT (answer STRING, finish_reason STRING, answer_tokens INT, "
                + "latency_ms BIGINT, sla_met BOOLEAN) WITH ('provider' = 'qwen3', 'model' = '" + Fixtures.MOE + "', "
                + "'threads' = '2', 'default-max-tokens' = '100000', 'max-context' = '0')");
        Map<Integer, Row> rows = collect(env, "SELECT id, answer, finish_reason, answer_tokens, latency_ms, sla_met "
                + "FROM ML_PREDICT(TABLE prompts, MODEL endless, DESCRIPTOR(prompt), MAP['timeout', '2s']) WHERE id = 2");
        Row r = rows.get(2);
        assertNotNull(r, rows.toString());
        assertEquals("timeout", r.getField(2), r.toString());
        assertNull(r.getField(1));
        assertEquals(0, r.getField(3));
        assertTrue((Long) r.getField(4) < 2_000, "ended before Flink's own timeout: " + r);
        assertNull(r.getField(5), "no 'default-sla': no SLA to meet");
    }

    @Test
    void optionsAndColumnsAreCheckedWhenTheQueryIsPlanned() {
        var env = tableEnv();
        String model = "'provider' = 'qwen3', 'model' = '" + Fixtures.MOE + "'";
        env.executeSql("CREATE MODEL tuned INPUT (prompt STRING) OUTPUT (answer STRING) WITH (" + model + ", 'default-sla' = '5s', "
                + "'expert-shards' = '1', 'thinking' = 'false', 'top-p' = '0.9', 'answer-reserve-tokens' = '8', "
                + "'json-schema' = '{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}')");
        assertTrue(env.explainSql("SELECT * FROM ML_PREDICT(TABLE prompts, MODEL tuned, DESCRIPTOR(prompt))").contains("tuned"));
        env.executeSql("CREATE MODEL bad_column INPUT (prompt STRING) OUTPUT (sentiment STRING) WITH (" + model + ")");
        env.executeSql("CREATE MODEL bad_type INPUT (prompt STRING) OUTPUT (latency_ms INT) WITH (" + model + ")");
        env.executeSql("CREATE MODEL datastream INPUT (prompt STRING) OUTPUT (answer STRING) WITH (" + model + ", 'max-in-flight' = '4')");
        env.executeSql("CREATE MODEL unknown_option INPUT (prompt STRING) OUTPUT (answer STRING) WITH (" + model + ", 'colour' = 'red')");
        env.executeSql("CREATE MODEL nan INPUT (prompt STRING) OUTPUT (answer STRING) WITH (" + model + ", 'temperature' = 'NaN')");
        env.executeSql("CREATE MODEL bad_schema INPUT (prompt STRING) OUTPUT (answer STRING) WITH (" + model + ", 'json-schema' = '{')");
        env.executeSql("CREATE MODEL label_no_labels INPUT (prompt STRING) OUTPUT (label STRING) WITH (" + model + ")");
        env.executeSql("CREATE MODEL labels_csv INPUT (prompt STRING) OUTPUT (label STRING) WITH (" + model + ", 'labels' = 'a,b')");
        env.executeSql("CREATE MODEL labels_one INPUT (prompt STRING) OUTPUT (label STRING) WITH (" + model + ", 'labels' = '[\"a\"]')");
        env.executeSql("CREATE MODEL labels_type INPUT (prompt STRING) OUTPUT (label_probabilities MAP<STRING, FLOAT>) WITH ("
                + model + ", 'labels' = '[\"a\", \"b\"]')");
        env.executeSql("CREATE MODEL confidence INPUT (prompt STRING) OUTPUT (label STRING) WITH (" + model
                + ", 'labels' = '[\"a\", \"b\"]', 'min-confidence' = '2')");
        Map<String, String> expected = new HashMap<>(Map.of(
                "bad_column", "OUTPUT column 'sentiment' is not one of [answer, reasoning",
                "bad_type", "OUTPUT column 'latency_ms' must be BIGINT, got INT",
                "datastream", "option 'max-in-flight' applies to the DataStream operator only; in SQL, rows in flight are "
                        + "ML_PREDICT's 'max-concurrent-operations'",
                "bad_schema", "option 'json-schema' cannot be used: json_schema is not JSON",
                "unknown_option", "unknown option 'colour' (known: [answer-reserve-tokens,",
                "nan", "option 'temperature' must be between 0 (greedy) and 100, got NaN"));
        expected.putAll(Map.of(
                "label_no_labels", "OUTPUT column 'label' needs the option 'labels'",
                "labels_csv", "option 'labels' is not JSON",
                "labels_one", "option 'labels': labels: between 2 and 512 labels, got 1",
                "labels_type", "OUTPUT column 'label_probabilities' must be MAP<STRING, DOUBLE>",
                "confidence", "option 'min-confidence' must be between 0 and 1, got 2.0"));
        expected.forEach((name, message) -> {
            var e = assertThrows(Exception.class, () -> env.explainSql(
                    "SELECT * FROM ML_PREDICT(TABLE prompts, MODEL " + name + ", DESCRIPTOR(prompt))"));
            String messages = rootMessages(e);
            assertTrue(messages.contains("model default_catalog.default_database." + name + ": " + message), messages);
        });
    }

    static String rootMessages(Throwable t) {
        var sb = new StringBuilder();
        for (; t != null; t = t.getCause()) {
            sb.append(t.getMessage()).append(" | ");
        }
        return sb.toString();
    }
}
