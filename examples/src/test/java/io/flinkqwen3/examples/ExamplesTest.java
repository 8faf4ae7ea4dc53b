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
    void classifyGivesEveryMessageOneOfItsLabelsAndTheirProbabilities() throws Exception {
        for (JsonNode line : run(ClassifyExample::run, "message-")) {
            String label = line.get("label").asText();
            assertTrue(ClassifyExample.LABELS.contains(label), line.toString());
            JsonNode p = line.get("label_probabilities");
            var names = new TreeSet<String>();
            p.fieldNames().forEachRemaining(names::add);
            assertEquals(new TreeSet<>(ClassifyExample.LABELS), names, line.toString());
            double sum = 0;
            double best = 0;
            for (String l : ClassifyExample.LABELS) {
                sum += p.get(l).asDouble();
                best = Math.max(best, p.get(l).asDouble());
            }
            assertEquals(1.0, sum, 1e-6, line.toString());
            assertEquals(best, p.get(label).asDouble(), line.toString());
            // the default --min-confidence is 0.5: below it, the message came from the low-confidence topic
            assertEquals(best < 0.5, line.path("low_confidence").asBoolean(false), line.toString());
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
