package io.flinkqwen3.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quickstart with a model that cannot be loaded, or that has no tokenizer to read prompts with,
 * ends at once with the reason, instead of restarting forever.
 */
class QuickstartModelUnavailableTest {
    @Test
    void aModelThatCannotBeLoadedEndsTheQuickstartWithTheLoadersMessage(@TempDir Path dir) throws Exception {
        // a file that exists (a missing one is refused before the job starts) but is no model
        String model = Files.writeString(dir.resolve("model.bin"), "not a model").toString();
        var err = new ByteArrayOutputStream();
        PrintStream saved = System.err;
        int code;
        long start = System.nanoTime();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            code = Quickstart.run(new String[] {"--model", model, "--prompts", "2"}, new PrintStream(new ByteArrayOutputStream()));
        } finally {
            System.setErr(saved);
        }
        String log = err.toString(StandardCharsets.UTF_8);
        assertEquals(1, code, log);
        assertTrue(log.contains("quickstart: the job failed: Qwen3 model '" + model + "' cannot be used: " + model
                + ": neither a model directory (config.json + *.safetensors) nor a .gguf file"), log);
        System.out.printf("quickstart ended in %.1f s%n", (System.nanoTime() - start) / 1e9);
    }

    @Test
    void aModelWithoutATokenizerEndsTheQuickstartSayingWhatToAdd(@TempDir Path dir) throws Exception {
        Path moe = Path.of("../../shared/fixtures/qwen3-moe-tiny").toAbsolutePath().normalize();
        for (String f : new String[] {"config.json", "model.safetensors"}) {
            Files.createSymbolicLink(dir.resolve(f), moe.resolve(f));
        }
        var run = LaunchersCommandLineTest.quickstart("--model", dir.toString(), "--prompts", "2", "--max-tokens", "4");
        assertEquals(1, run.code(), run.err());
        assertEquals("", run.out(), "no dead letters: the job fails before it reads a record");
        assertTrue(run.err().contains("quickstart: the job failed: Qwen3 model '" + dir + "' cannot be used: it has no tokenizer.json"
                + " (or tokenizer.ggml.* metadata): the Flink operator needs a tokenizer to read prompts; put the model's"
                + " tokenizer.json beside config.json"), run.err());
    }
}
