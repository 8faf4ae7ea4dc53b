package io.flinkqwen3.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** sla-bench with a tiny duration on the fixture: its JSON lines, CSV and plot are produced and agree. */
class SlaBenchmarkTest {
    @Test
    void jsonLinesCsvAndPlotAreProducedAndCountsAddUp(@TempDir Path out) throws Exception {
        String model = Path.of("../../shared/fixtures/qwen3-dense-tiny").toAbsolutePath().normalize().toString();
        var bytes = new ByteArrayOutputStream();
        int code = SlaBenchmark.run(new String[] {"--model", model, "--loads", "0.5", "--duration", "3", "--drain", "5",
                "--policies", "sla,64", "--capacity-records", "16", "--answer-tokens", "8", "--max-tokens", "160",
                "--out", out.toString()}, new PrintStream(bytes, true, StandardCharsets.UTF_8));
        assertEquals(0, code);
        List<JsonNode> lines = new ArrayList<>();
        for (String line : bytes.toString(StandardCharsets.UTF_8).split("\n")) {
            lines.add(new ObjectMapper().readTree(line));
        }
        assertEquals(2, lines.size(), "one line per policy and load");
        assertEquals("sla", lines.get(0).get("policy").asText());
        assertEquals("64", lines.get(1).get("policy").asText());
        List<String> csv = Files.readAllLines(out.resolve("sla-bench.csv"));
        assertEquals(3, csv.size(), "header and a row per line: " + csv);
        for (int i = 0; i < lines.size(); i++) {
            JsonNode j = lines.get(i);
            for (String field : new String[] {"policy", "load", "hit_rate", "mean_thinking_tokens", "p95_latency_ms",
                    "records_per_s", "mean_granted_budget", "p50_latency_ms", "p99_latency_ms", "classes"}) {
                assertTrue(j.has(field), field + " missing in " + j);
            }
            assertEquals(0.5, j.get("load").asDouble());
            assertTrue(j.get("template").asText().contains("Thinking-2507"), j.toString());
            int sent = j.get("sent").asInt(), answered = j.get("answered").asInt(), met = j.get("sla_met").asInt();
            assertTrue(sent > 0 && answered <= sent && met <= answered, j.toString());
            int classSent = 0, classMet = 0;
            for (JsonNode c : j.get("classes")) {
                classSent += c.get("sent").asInt();
                classMet += c.get("sla_met").asInt();
            }
            assertEquals(sent, classSent, "the SLA classes add up: " + j);
            assertEquals(met, classMet, "the SLA classes add up: " + j);
            assertEquals(met / (double) sent, j.get("hit_rate").asDouble(), 1e-3);
            String[] row = csv.get(i + 1).split(",");
            assertEquals(j.get("policy").asText(), row[0]);
            assertEquals(sent, Integer.parseInt(row[3]));
            assertEquals(answered, Integer.parseInt(row[4]));
            assertEquals(met, Integer.parseInt(row[5]));
        }
        // the fixture never closes its thought itself: with budget 64 it thinks to the budget, then the early-stop text
        JsonNode fixed = lines.get(1);
        assertEquals(64.0, fixed.get("mean_granted_budget").asDouble());
        assertTrue(fixed.get("mean_thinking_tokens").asDouble() > 64, fixed.toString());
        var png = ImageIO.read(out.resolve("sla-bench.png").toFile());
        assertNotNull(png, "a PNG image");
        assertEquals(900, png.getWidth());
    }
}
