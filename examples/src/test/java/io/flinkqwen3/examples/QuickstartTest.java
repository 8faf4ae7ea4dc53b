package io.flinkqwen3.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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

    @Test
    void deadLettersAreReportedAsTheyComeAndEndTheRun(@TempDir Path dir) throws Exception {
        // a model whose context is 8 positions: every prompt is too long, a dead letter
        Path moe = Path.of("../../shared/fixtures/qwen3-moe-tiny").toAbsolutePath().normalize();
        for (String f : new String[] {"model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
            Files.createSymbolicLink(dir.resolve(f), moe.resolve(f));
        }
        Files.writeString(dir.resolve("config.json"), Files.readString(moe.resolve("config.json"))
                .replace("\"max_position_embeddings\": 4096", "\"max_position_embeddings\": 8"));
        var run = LaunchersCommandLineTest.quickstart("--model", dir.toString(), "--prompts", "2", "--max-tokens", "4");
        assertEquals(1, run.code(), "not every prompt was answered: " + run.err());
        var ids = new TreeSet<String>();
        for (String line : run.out().split("\n")) {
            JsonNode json = new ObjectMapper().readTree(line);
            assertTrue(json.get("dead_letter").asText().startsWith("prompt has more than 7 tokens"), line);
            ids.add(json.get("id").asText());
        }
        assertEquals(new TreeSet<>(java.util.List.of("prompt-0", "prompt-1")), ids);
        assertTrue(run.err().contains("quickstart: 0/2 prompts answered in "), run.err());
        assertTrue(run.err().contains("; 2 dead letters (see their reasons above)"), run.err());
        // it ends quietly: no stack trace (such as the CheckpointException of a checkpoint declined by closing tasks)
        assertFalse(run.err().contains("\tat "), run.err());
    }
}
