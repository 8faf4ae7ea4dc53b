package io.flinkqwen3.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The quickstart as CI runs it: every prompt gets one JSON line with the agreed fields. */
class QuickstartTest {
    @Test
    void everyPromptGetsACompletionLine() throws Exception {
        String model = Path.of("../../shared/fixtures/qwen3-moe-tiny").toAbsolutePath().normalize().toString();
        var bytes = new ByteArrayOutputStream();
        int code = Quickstart.run(new String[] {"--model", model, "--prompts", "6", "--max-tokens", "16"},
                new PrintStream(bytes, true, StandardCharsets.UTF_8));
        assertEquals(0, code);
        var ids = new TreeSet<String>();
        for (String line : bytes.toString(StandardCharsets.UTF_8).split("\n")) {
            JsonNode json = new ObjectMapper().readTree(line);
            for (String field : new String[] {"id", "sla_ms", "thinking_budget", "latency_ms", "sla_met", "finish_reason", "answer"}) {
                assertTrue(json.has(field), field + " missing in " + line);
            }
            ids.add(json.get("id").asText());
        }
        assertEquals(6, ids.size(), ids.toString());
    }
}
