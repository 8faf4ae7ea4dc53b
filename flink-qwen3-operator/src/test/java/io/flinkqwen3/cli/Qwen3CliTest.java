package io.flinkqwen3.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flinkqwen3.testing.Fixtures;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CLI forms other tools rely on, run in-process against the fixtures. */
class Qwen3CliTest {
    static final ObjectMapper JSON = new ObjectMapper();

    /** Exit code, stdout and stderr of one command line. */
    record Run(int code, String out, String err) {}

    static Run run(String... args) {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        int code = new Qwen3Cli(new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8))
                .run(args);
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static String csv(int[] ids) {
        return Arrays.stream(ids).mapToObj(String::valueOf).collect(Collectors.joining(","));
    }

    @Test
    void tokenizePrintsAJsonArrayOfIds() {
        Run r = run("tokenize", "--model", Fixtures.DENSE.toString(), "--text", "Hello, world!");
        assertEquals(0, r.code());
        assertEquals("[9707,11,1879,0]\n", r.out());
    }

    @Test
    void renderPrintsTheTemplateExactly(@TempDir Path dir) throws Exception {
        JsonNode golden = JSON.readTree(Files.readString(Fixtures.FIXTURES.resolve("tokenizer-golden.json")));
        for (JsonNode c : golden.path("chat_template")) {
            Path messages = dir.resolve(c.path("name").asText() + ".json");
            Files.writeString(messages, c.path("messages").toString());
            Run r = c.path("enable_thinking").asBoolean()
                    ? run("render", "--model", Fixtures.DENSE.toString(), "--messages", messages.toString())
                    : run("render", "--model", Fixtures.DENSE.toString(), "--messages", messages.toString(), "--no-thinking");
            assertEquals(0, r.code());
            assertEquals(c.path("text").asText(), r.out(), c.path("name").asText());
        }
    }

    @Test
    void renderOpensTheThinkBlockWhenTheModelsTemplateDoes(@TempDir Path dir) throws Exception {
        // a Thinking-2507 style template: its generation prompt opens <think>, so generate feeds the model that too
        Path model = Files.createDirectory(dir.resolve("think"));
        Files.createSymbolicLink(model.resolve("tokenizer.json"), Fixtures.DENSE.resolve("tokenizer.json").toAbsolutePath());
        Files.writeString(model.resolve("tokenizer_config.json"),
                JSON.createObjectNode().put("chat_template", "{{- '<|im_start|>assistant\\n<think>\\n' }}").toString());
        Path messages = Files.writeString(dir.resolve("chat.json"), "[{\"role\": \"user\", \"content\": \"Hi\"}]");
        Run r = run("render", "--model", model.toString(), "--messages", messages.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n", r.out());
        r = run("render", "--model", Fixtures.DENSE.toString(), "--messages", messages.toString());
        assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", r.out(), "the fixture's own template does not");
    }

    @Test
    void renderWithToolsAndToolCallsEqualsTheRealTemplate(@TempDir Path dir) throws Exception {
        JsonNode goldens = JSON.readTree(Path.of("src/test/resources/chat-template-goldens.json").toFile());
        int rendered = 0;
        for (JsonNode c : goldens.path("cases")) {
            boolean lastIsAssistant = c.path("messages").get(c.path("messages").size() - 1).path("role").asText().equals("assistant");
            if (c.path("add_generation_prompt").asBoolean() == lastIsAssistant || c.path("tools").isNull()) {
                continue; // the CLI adds the generation prompt unless the last turn is the assistant's; the rest: ChatTemplateGoldenTest
            }
            Path messages = Files.writeString(dir.resolve("messages.json"), c.path("messages").toString());
            Path tools = Files.writeString(dir.resolve("tools.json"), c.path("tools").isNull() ? "[]" : c.path("tools").toString());
            var args = new java.util.ArrayList<>(java.util.List.of("render", "--model", Fixtures.DENSE.toString(),
                    "--messages", messages.toString(), "--tools", tools.toString()));
            if (!c.path("enable_thinking").asBoolean()) {
                args.add("--no-thinking");
            }
            Run r = run(args.toArray(String[]::new));
            assertEquals(0, r.code(), r.err());
            assertEquals(c.path("rendered").asText(), r.out(), c.path("name").asText());
            rendered++;
        }
        assertTrue(rendered >= 3, "cases rendered: " + rendered);
    }

    @Test
    void generateWithAJsonSchemaPrintsJsonThatValidates(@TempDir Path dir) throws Exception {
        Path schema = Path.of("src/test/resources/schemas/person.json");
        Run r = run("generate", "--model", Fixtures.DENSE.toString(), "--prompt", "Describe a person.", "--no-thinking",
                "--max-tokens", "48", "--seed", "1", "--threads", "2", "--json-schema", schema.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals(null, io.flinkqwen3.testing.SchemaCheck.problem(Files.readString(schema), r.out().strip()), r.out());
    }

    @Test
    void benchKvReportsThePositionsARequestReallyReserves() throws Exception {
        // 1 MB holds 20 blocks of 64 positions (768 bytes each): fewer than the context, so each request is capped at the pool
        Run r = run("bench-kv", "--model", Fixtures.DENSE.toString(), "--sequences", "2", "--context", "4096", "--prompt-tokens", "8",
                "--kv-cache-memory", "1", "--seconds", "1", "--threads", "1", "--json");
        assertEquals(0, r.code(), r.err());
        var summary = JSON.readTree(r.out().lines().reduce((a, b) -> b).orElseThrow());
        int positions = summary.get("kv_blocks").asInt() * 64;
        assertTrue(positions < 4096, r.out());
        assertEquals(positions, summary.get("positions_reserved_per_request").asInt());
        assertTrue(r.out().contains("each request reserves up to " + positions + " positions"), r.out());
        assertTrue(r.out().startsWith("KV cache memory " + String.format(java.util.Locale.ROOT, "%.1f KB",
                summary.get("kv_cache_bytes").asLong() / 1e3)), r.out());
    }

    @Test
    void classifyPrintsOneJsonLineWithTheLabelAndEveryLabelsProbability() throws Exception {
        Run r = run("classify", "--model", Fixtures.DENSE.toString(), "--labels", "positive, negative ,neutral",
                "--text", "The soup was cold.", "--system", "Classify the review.", "--no-thinking", "--threads", "2", "--json");
        assertEquals(0, r.code(), r.err());
        assertEquals(1, r.out().strip().lines().count(), r.out());
        var line = JSON.readTree(r.out());
        var p = line.get("label_probabilities");
        assertEquals(List.of("positive", "negative", "neutral"), iterableToList(p.fieldNames()));
        double sum = 0, best = -1;
        String bestLabel = null;
        for (var e : (Iterable<java.util.Map.Entry<String, com.fasterxml.jackson.databind.JsonNode>>) p::fields) {
            sum += e.getValue().asDouble();
            if (e.getValue().asDouble() > best) {
                best = e.getValue().asDouble();
                bestLabel = e.getKey();
            }
        }
        assertEquals(1.0, sum, 1e-9);
        assertEquals(bestLabel, line.get("label").asText());
        Run duplicate = run("classify", "--model", Fixtures.DENSE.toString(), "--labels", "a,a", "--text", "x");
        assertEquals(2, duplicate.code());
        assertTrue(duplicate.err().contains("labels[1] 'a' is a duplicate"), duplicate.err());
    }

    private static List<String> iterableToList(java.util.Iterator<String> names) {
        var list = new java.util.ArrayList<String>();
        names.forEachRemaining(list::add);
        return list;
    }

    @Test
    void logitsPrintsTopIdsAndLogsumexpPerPosition() throws Exception {
        var ref = new Fixtures.Reference(Fixtures.YARN.resolve("reference.safetensors"));
        int[] ids = ref.ints("p1.ids");
        Run r = run("logits", "--model", Fixtures.YARN.toString(), "--tokens", csv(ids), "--top", "10");
        assertEquals(0, r.code());
        String[] lines = r.out().split("\n");
        assertEquals(ids.length, lines.length);
        float[] lse = ref.floats("p1.logsumexp");
        float[] topLogits = ref.floats("p1.top10_logits");
        int[] topIds = ref.ints("p1.top10_ids");
        for (int p = 0; p < ids.length; p++) {
            JsonNode line = JSON.readTree(lines[p]);
            assertEquals(p, line.get("position").asInt());
            assertEquals(lse[p], line.get("logsumexp").asDouble(), 1e-3);
            assertEquals(topIds[p * 10], line.get("top_ids").get(0).asInt(), "argmax at " + p);
            for (int j = 0; j < 10; j++) {
                assertEquals(topLogits[p * 10 + j], line.get("top_logits").get(j).floatValue(), 1e-3);
            }
        }
    }

    @Test
    void generateJsonWithTemperatureZeroIsTheGreedyReference() throws Exception {
        var ref = new Fixtures.Reference(Fixtures.DENSE.resolve("reference.safetensors"));
        Run r = run("generate", "--model", Fixtures.DENSE.toString(), "--tokens", csv(ref.ints("p2.ids")),
                "--temperature", "0", "--max-tokens", "24", "--threads", "2", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode json = JSON.readTree(r.out());
        int[] tokens = new int[json.get("output_tokens").size()];
        Arrays.setAll(tokens, i -> json.get("output_tokens").get(i).asInt());
        assertArrayEquals(ref.ints("p2.greedy"), tokens);
        assertEquals("length", json.get("finish_reason").asText());
        assertEquals(ref.ints("p2.ids").length, json.get("prompt_tokens").asInt());
        assertTrue(json.get("tokens_per_second").asDouble() > 0);
    }

    @Test
    void generateFromAPromptWithABudget() throws Exception {
        Run r = run("generate", "--model", Fixtures.MOE.toString(), "--prompt", "What is 2+2?", "--thinking-budget", "0",
                "--max-tokens", "5", "--seed", "3", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode json = JSON.readTree(r.out());
        assertEquals(0, json.get("thinking_budget").asInt());
        assertEquals(0, json.get("thinking_tokens").asInt());
        assertEquals(19, json.get("prompt_tokens").asInt(), "the golden non-thinking rendering has 19 tokens");
    }

    @Test
    void badInputExitsNonZeroWithAMessage() {
        assertEquals(2, run("generate", "--model", Fixtures.MOE.toString()).code(), "neither --prompt nor --tokens");
        assertEquals(2, run("frobnicate").code());
        assertEquals(1, run("tokenize", "--model", "/no/such/dir", "--text", "x").code());
        assertEquals(2, run("logits", "--model", Fixtures.YARN.toString(), "--tokens", "1,99999").code(), "outside the vocabulary");
    }
}
