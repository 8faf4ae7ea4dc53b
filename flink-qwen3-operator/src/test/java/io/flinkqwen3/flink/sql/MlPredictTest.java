package io.flinkqwen3.flink.sql;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.Fixtures;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/** Flink SQL's ML_PREDICT with 'provider' = 'qwen3', planned and run by the real planner on a local cluster. */
class MlPredictTest {
    static TableEnvironment tableEnv() {
        var env = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        env.getConfig().set("parallelism.default", "1");
        env.executeSql("CREATE TEMPORARY VIEW prompts AS SELECT * FROM (VALUES "
                + "(1, 'Classify: the battery died after two days.'), (2, 'Name a prime number.'), (3, '')) AS t(id, prompt)");
        return env;
    }

    @Test
    void mlPredictAnswersEveryRowAndFlagsBadOnes() throws Exception {
        var env = tableEnv();
        env.executeSql("CREATE MODEL qwen INPUT (prompt STRING) OUTPUT (answer STRING, finish_reason STRING, answer_tokens INT) "
                + "WITH ('provider' = 'qwen3', 'model' = '" + Fixtures.MOE + "', 'threads' = '2', 'default-max-tokens' = '5')");
        Map<Integer, Row> rows = new HashMap<>();
        try (var it = env.executeSql("SELECT id, answer, finish_reason, answer_tokens "
                + "FROM ML_PREDICT(TABLE prompts, MODEL qwen, DESCRIPTOR(prompt))").collect()) {
            it.forEachRemaining(r -> rows.put((Integer) r.getField(0), r));
        }
        assertEquals(3, rows.size(), rows.toString());
        for (int id : new int[] {1, 2}) {
            assertEquals("length", rows.get(id).getField(2), rows.get(id).toString());
            assertEquals(5, rows.get(id).getField(3));
            assertTrue(!((String) rows.get(id).getField(1)).isEmpty());
        }
        assertTrue(((String) rows.get(3).getField(2)).startsWith("error: missing prompt"), rows.get(3).toString());
    }

    @Test
    void unknownOutputColumnsAreRejectedWithTheirName() {
        var env = tableEnv();
        env.executeSql("CREATE MODEL bad INPUT (prompt STRING) OUTPUT (sentiment STRING) "
                + "WITH ('provider' = 'qwen3', 'model' = '" + Fixtures.MOE + "')");
        var e = assertThrows(Exception.class, () -> env.executeSql(
                "SELECT * FROM ML_PREDICT(TABLE prompts, MODEL bad, DESCRIPTOR(prompt))").await());
        String message = rootMessages(e);
        assertTrue(message.contains("'sentiment'") && message.contains("answer"), message);
    }

    @Test
    void everyOptionOfAModelIsAcceptedAndDataStreamOnlyOnesAreNamed() {
        var env = tableEnv();
        env.executeSql("CREATE MODEL tuned INPUT (prompt STRING) OUTPUT (answer STRING) WITH ('provider' = 'qwen3', 'model' = '"
                + Fixtures.MOE + "', 'default-sla' = '5s', 'expert-shards' = '1', 'thinking' = 'false', 'top-p' = '0.9')");
        String plan = env.explainSql("SELECT * FROM ML_PREDICT(TABLE prompts, MODEL tuned, DESCRIPTOR(prompt))");
        assertTrue(plan.contains("tuned"), plan);

        env.executeSql("CREATE MODEL streaming INPUT (prompt STRING) OUTPUT (answer STRING) WITH ('provider' = 'qwen3', 'model' = '"
                + Fixtures.MOE + "', 'max-in-flight' = '4')");
        var e = assertThrows(Exception.class, () -> env.explainSql(
                "SELECT * FROM ML_PREDICT(TABLE prompts, MODEL streaming, DESCRIPTOR(prompt))"));
        String message = rootMessages(e);
        assertTrue(message.contains("option 'max-in-flight' applies to the DataStream operator only"), message);
        assertTrue(message.contains("default-sla") && message.contains("thinking-budget"), "lists what applies: " + message);
    }

    static String rootMessages(Throwable t) {
        var sb = new StringBuilder();
        for (; t != null; t = t.getCause()) {
            sb.append(t.getMessage()).append(" | ");
        }
        return sb.toString();
    }
}
