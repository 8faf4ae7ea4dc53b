package io.flinkqwen3.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.cli.Qwen3CliTest.Run;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a user sees at the command line before any model is loaded: help on stdout with exit 0,
 * usage errors on stderr with exit 2 naming the option and what it expects, listing the valid ones.
 */
class CliUsageTest {
    static final String[] COMMANDS = {"generate", "tokenize", "render", "logits", "bench", "synth"};

    private static Run run(String... args) {
        return Qwen3CliTest.run(args);
    }

    private static void assertUsageError(Run r, String... expected) {
        assertEquals(2, r.code(), r.err());
        assertEquals("", r.out(), "nothing on stdout for a usage error");
        for (String e : expected) {
            assertTrue(r.err().contains(e), "expected '" + e + "' in:\n" + r.err());
        }
        assertTrue(r.err().contains("Usage: qwen3"), "the usage follows the message:\n" + r.err());
    }

    @Test
    void helpGoesToStdoutWithExitZero() {
        Run top = run("--help");
        assertEquals(0, top.code());
        assertEquals("", top.err());
        for (String command : COMMANDS) {
            assertTrue(top.out().contains(command), command + " listed in:\n" + top.out());
            for (String[] form : new String[][] {{command, "--help"}, {"help", command}, {command, "-h"}}) {
                Run r = run(form);
                assertEquals(0, r.code(), String.join(" ", form) + ": " + r.err());
                assertTrue(r.out().startsWith("Usage: qwen3 " + command), String.join(" ", form) + ":\n" + r.out());
                assertEquals("", r.err());
            }
        }
        assertTrue(run("generate", "--help").out().contains("--max-tokens=N"));
    }

    @Test
    void everySubcommandPrintsTheVersionLikeQwen3() {
        Run top = run("-V");
        assertEquals(0, top.code());
        assertTrue(top.out().startsWith("flink-qwen3 "), top.out());
        for (String command : new String[] {"classify", "generate", "bench-kv", "render"}) {
            assertEquals(top.out(), run(command, "-V").out(), command);
        }
    }

    @Test
    void noCommandIsAUsageError() {
        assertUsageError(run(), "qwen3: a command is required");
        assertUsageError(run("frobnicate"), "Unmatched argument at index 0: 'frobnicate'");
    }

    @Test
    void unknownOptionsAreRejectedWithTheValidOnes() {
        Run r = run("generate", "--model", "m", "--prompt", "2", "--max-token", "4");
        assertUsageError(r, "qwen3 generate: Unknown options: '--max-token', '4'", "Possible solutions: --max-tokens",
                "--thinking-budget=N", "--temperature=T");
    }

    @Test
    void badValuesNameTheOptionAndWhatItExpects() {
        String model = Fixtures.DENSE.toString();
        assertUsageError(run("bench", "--model", model, "--batch", "1,x"), "qwen3 bench: Invalid value for option '--batch'",
                "'x' is not an integer (expected comma-separated integers such as 1,4,16)");
        assertUsageError(run("bench", "--model", model, "--batch", "1,0"),
                "--batch expects comma-separated batch sizes from 1 to 1024 (e.g. 1,4,16), got 0");
        assertUsageError(run("generate", "--model", model, "--prompt", "hi", "--temperature", "NaN"),
                "qwen3 generate: --temperature expects a number from 0 (greedy) to 100, got NaN");
        assertUsageError(run("generate", "--model", model, "--prompt", "hi", "--max-tokens", "0"),
                "--max-tokens expects a positive token count, got 0");
        assertUsageError(run("generate", "--model", model, "--prompt", "hi", "--quantize", "q5"),
                "Invalid value for option '--quantize'", "unknown quantization 'q5' (supported: q8_0, q4_0)");
        assertUsageError(run("generate", "--model", model, "--prompt", "hi", "--tokens", "1"), "mutually exclusive");
        assertUsageError(run("generate", "--model", model), "Missing required argument", "--prompt=TEXT", "--tokens=IDS");
        assertUsageError(run("logits", "--model", model, "--tokens", "1,two"), "Invalid value for option '--tokens'", "'two' is not an integer");
        assertUsageError(run("classify", "--model", model, "--labels", "", "--text", "x"), "qwen3 classify: --labels: labels[0] is empty");
        assertUsageError(run("classify", "--model", model, "--labels", "a, ,b", "--text", "x"), "--labels: labels[1] is empty");
        assertUsageError(run("classify", "--model", model, "--labels", "a, a", "--text", "x"), "--labels: labels[1] 'a' is a duplicate");
        assertUsageError(run("bench-kv", "--model", model, "--context", "5000"),
                "--context expects a token count from 2 to the model's max_position_embeddings 4096, got 5000");
        assertUsageError(run("bench", "--model", model, "--prompt", "5000", "--gen", "16"),
                "--prompt 5000 and --gen 16 must each fit the model's context of 4096 positions");
        assertUsageError(run("synth", "--shape", "qwen3-1b", "--out", "/nonexistent"),
                "--shape expects one of qwen3-0.6b, qwen3-8b, qwen3-30b-a3b, got 'qwen3-1b'");
    }

    @Test
    void aPromptForAModelWithoutTokenizerIsRefusedBeforeLoading(@TempDir Path dir) throws Exception {
        // the layout 'qwen3 synth' writes without --tokenizer: config and weights only
        for (String f : new String[] {"config.json", "model.safetensors"}) {
            Files.createSymbolicLink(dir.resolve(f), Fixtures.MOE.resolve(f).toAbsolutePath());
        }
        Run r = run("generate", "--model", dir.toString(), "--prompt", "hi");
        assertUsageError(r, dir + " has no tokenizer.json, so it takes --tokens IDS, not --prompt");
    }

    /** A directory that is no model at all (no config.json) gets that diagnosis, not the tokenizer's. */
    @Test
    void aPromptForADirectoryWithoutConfigSaysTheConfigIsMissing(@TempDir Path dir) {
        Run r = run("generate", "--model", dir.toString(), "--prompt", "hi");
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("qwen3 generate: " + dir.resolve("config.json") + ": file missing"), r.err());
    }

    @Test
    void synthSaysUpFrontThatWithoutTokenizerTheModelTakesTokenIdsOnly(@TempDir Path dir) throws Exception {
        Path out = Files.createFile(dir.resolve("file")).resolve("m"); // cannot be created: nothing is written
        Run r = run("synth", "--shape", "qwen3-0.6b", "--layers", "1", "--out", out.toString(), "--threads", "1");
        assertTrue(r.err().startsWith("synth: no --tokenizer: " + out + " will take token ids (--tokens), not --prompt\n"), r.err());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("qwen3 synth: cannot write " + out), r.err());
    }

    @Test
    void tokenIdsAreCheckedBeforeTheWeightsLoad() {
        // a negative id while parsing: the model location is not even looked at
        assertUsageError(run("generate", "--model", "/no/such/model", "--tokens", "1,-1"), "qwen3 generate: Invalid value for option "
                + "'--tokens': token id -1 is negative (token ids are 0 or more)");
        assertUsageError(run("logits", "--model", "/no/such/model", "--tokens", "-3"), "token id -3 is negative");
        // an id beyond the vocabulary from the checkpoint's config, before the weights load
        String model = Fixtures.DENSE.toString();
        for (String command : new String[] {"generate", "logits"}) {
            assertUsageError(run(command, "--model", model, "--tokens", "1,999999"),
                    "qwen3 " + command + ": --tokens: token id 999999 (item 2) is outside the model's vocabulary [0, ");
        }
    }

    @Test
    void benchSchemaRefusesASchemaThatIsNoJsonBeforeReadingTheModel(@TempDir Path dir) throws Exception {
        Path notJson = Files.writeString(dir.resolve("schema.json"), "{\"type\": ");
        assertUsageError(run("bench-schema", "--model", "/no/such/model", "--json-schema", notJson.toString()),
                "qwen3 bench-schema: --json-schema " + notJson + ": json_schema is not JSON");
        assertUsageError(run("bench-schema", "--model", "/no/such/model", "--json-schema", dir.resolve("missing.json").toString()),
                "--json-schema " + dir.resolve("missing.json") + ": no such file (a JSON Schema)");
    }

    /** An existing model directory is never written over: a running engine may have its weights mapped. */
    @Test
    void synthRefusesAnOutThatExistsAndIsNotAnEmptyDirectoryBeforeWritingAnything(@TempDir Path dir) throws Exception {
        Path model = Files.createDirectory(dir.resolve("model"));
        Path weights = Files.writeString(model.resolve("model.safetensors"), "old weights");
        Object inode = Files.readAttributes(weights, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
        Path file = Files.writeString(dir.resolve("file"), "x");
        for (Path out : new Path[] {model, file}) {
            Run r = run("synth", "--shape", "qwen3-0.6b", "--layers", "1", "--out", out.toString(), "--threads", "1");
            assertUsageError(r, "qwen3 synth: --out " + out + " exists and is not an empty directory: choose a new or empty directory");
            assertTrue(r.err().startsWith("qwen3 synth: --out"), "refused before anything else is said:\n" + r.err());
        }
        try (var files = Files.list(model)) {
            assertEquals(java.util.List.of(weights), files.toList());
        }
        assertEquals("old weights", Files.readString(weights));
        assertEquals(inode, Files.readAttributes(weights, java.nio.file.attribute.BasicFileAttributes.class).fileKey());
        assertEquals("x", Files.readString(file));
    }

    @Test
    void filesOfOptionsAreCheckedBeforeLoadingWithTheOptionAndTheProblem(@TempDir Path dir) throws Exception {
        String model = Fixtures.DENSE.toString();
        Path missing = dir.resolve("chat.json");
        assertUsageError(run("render", "--model", model, "--messages", missing.toString()),
                "qwen3 render: --messages " + missing + ": no such file (a JSON list of chat turns)");
        assertUsageError(run("classify", "--model", model, "--labels", "a,b", "--messages", dir.toString()),
                "qwen3 classify: --messages " + dir + ": a directory, expected a JSON list of chat turns");
        Path notJson = Files.writeString(dir.resolve("bad.json"), "[{\"role\": ");
        assertUsageError(run("render", "--model", model, "--messages", notJson.toString()), "--messages " + notJson + ": not valid JSON (");
        Path object = Files.writeString(dir.resolve("object.json"), "{\"role\": \"user\"}");
        assertUsageError(run("render", "--model", model, "--messages", object.toString()),
                "--messages " + object + ": expected a JSON list of chat turns");
        Path badTurn = Files.writeString(dir.resolve("turn.json"), "[\"hi\"]");
        assertUsageError(run("classify", "--model", model, "--labels", "a,b", "--messages", badTurn.toString()),
                "qwen3 classify: --messages " + badTurn + ": [0] is \"hi\", expected an object");
        Path chat = Files.writeString(dir.resolve("ok.json"), "[{\"role\": \"user\", \"content\": \"x\"}]");
        assertUsageError(run("render", "--model", model, "--messages", chat.toString(), "--tools", missing.toString()),
                "--tools " + missing + ": no such file (a JSON list of function definitions)");
        assertUsageError(run("render", "--model", model, "--messages", chat.toString(), "--tools", chat.toString().replace("ok", "turn")),
                "--tools ", ": [0] is not an object");
        assertUsageError(run("generate", "--model", model, "--prompt", "x", "--json-schema", dir.toString()),
                "qwen3 generate: --json-schema " + dir + ": a directory, expected a JSON Schema");
        Path unsupported = Files.writeString(dir.resolve("schema.json"), "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"date\"}}}");
        assertUsageError(run("generate", "--model", model, "--prompt", "x", "--json-schema", unsupported.toString()),
                "qwen3 generate: --json-schema " + unsupported + ": json_schema /properties/a: type \"date\" is not supported");
    }

    @Test
    void classifyWithoutATokenizerSaysWhatThatMeansForClassify(@TempDir Path dir) throws Exception {
        Files.createSymbolicLink(dir.resolve("config.json"), Fixtures.MOE.resolve("config.json").toAbsolutePath());
        assertUsageError(run("classify", "--model", dir.toString(), "--labels", "a,b", "--text", "x"),
                dir + " has no tokenizer.json, so classify cannot score labels with it");
    }
}
