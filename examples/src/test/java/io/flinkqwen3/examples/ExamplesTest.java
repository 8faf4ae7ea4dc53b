package io.flinkqwen3.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.function.BiFunction;
import org.junit.jupiter.api.Test;

/**
 * The classify, enrich and sql examples as their launchers run them, on the fixture model: each
 * exits 0 with one JSON line per record, and every record's output is valid for its example.
 */
class ExamplesTest {
    static final String MODEL = Path.of("../../shared/fixtures/qwen3-moe-tiny").toAbsolutePath().normalize().toString();
    static final int RECORDS = 3;

    /** Runs an example, checks exit code 0 and one line per record id, and returns the lines. */
    static List<JsonNode> run(BiFunction<String[], PrintStream, Integer> example, String idPrefix) throws Exception {
        var bytes = new ByteArrayOutputStream();
        int code = example.apply(new String[] {"--model", MODEL, "--records", String.valueOf(RECORDS)},
                new PrintStream(bytes, true, StandardCharsets.UTF_8));
        String out = bytes.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, out);
        List<JsonNode> lines = new ArrayList<>();
        var ids = new TreeSet<String>();
        for (String line : out.split("\n")) {
            JsonNode json = new ObjectMapper().readTree(line);
            assertTrue(!json.has("dead_letter"), "no record of the example is a dead letter: " + line);
            ids.add(json.get("id").asText());
            lines.add(json);
        }
        var expected = new TreeSet<String>();
        for (int i = 0; i < RECORDS; i++) {
            expected.add(idPrefix + i);
        }
        assertEquals(expected, ids, out);
        return lines;
    }

    @Test
    void classifyGivesEveryMessageOneOfItsLabels() throws Exception {
        for (JsonNode line : run(ClassifyExample::run, "message-")) {
            assertTrue(ClassifyExample.LABELS.contains(line.get("label").asText()), line.toString());
        }
    }

    @Test
    void enrichGivesEveryEventFieldsThatValidateAgainstTheSchema() throws Exception {
        var schema = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12).getSchema(EnrichExample.SCHEMA);
        for (JsonNode line : run(EnrichExample::run, "event-")) {
            assertTrue(line.has("fields"), "the answer parses as JSON: " + line);
            assertEquals(List.of(), schema.validate(line.get("fields")), line.toString());
        }
    }

    @Test
    void sqlWritesASummaryAndASentimentForEveryReview() throws Exception {
        for (JsonNode line : run(SqlExample::run, "review-")) {
            assertTrue(List.of("positive", "negative", "mixed").contains(line.get("sentiment").asText()), line.toString());
            assertTrue(List.of("stop", "length").contains(line.get("finish_reason").asText()), "answered: " + line);
            assertTrue(line.get("summary").isTextual(), line.toString());
        }
    }
}
