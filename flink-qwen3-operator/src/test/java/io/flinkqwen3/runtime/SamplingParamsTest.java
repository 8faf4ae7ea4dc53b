package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.model.GenerationConfig;
import io.flinkqwen3.model.ModelFormatException;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** generation_config.json's sampling fields as transformers applies them, in both modes. */
class SamplingParamsTest {
    static GenerationConfig config(Path dir, String json) throws Exception {
        Path file = dir.resolve("generation_config.json");
        Files.writeString(file, json);
        return GenerationConfig.read(file);
    }

    @Test
    void doSampleFalseOrAbsentIsGreedyInBothModes(@TempDir Path dir) throws Exception {
        for (String json : new String[] {"{\"do_sample\": false, \"temperature\": 0.6, \"top_k\": 20}", "{\"temperature\": 0.6}"}) {
            GenerationConfig g = config(dir, json);
            for (boolean thinking : new boolean[] {true, false}) {
                SamplingParams s = SamplingParams.recommended(thinking, g, 7);
                assertEquals(0f, s.temperature(), json + " thinking=" + thinking);
                assertEquals(7, s.seed());
            }
        }
        // the dense fixture's file (written by transformers) leaves do_sample out: greedy, as transformers would decode
        assertEquals(0f, SamplingParams.recommended(false, GenerationConfig.read(Fixtures.DENSE.resolve("generation_config.json")), 1)
                .temperature());
    }

    @Test
    void sampledDefaultsApplyInBothModesAndMissingOnesFallBackToQwensRecommendation(@TempDir Path dir) throws Exception {
        GenerationConfig g = config(dir, "{\"do_sample\": true, \"temperature\": 0.5, \"top_k\": 30}");
        for (boolean thinking : new boolean[] {true, false}) {
            SamplingParams s = SamplingParams.recommended(thinking, g, 1);
            assertEquals(0.5f, s.temperature());
            assertEquals(30, s.topK());
            assertEquals(thinking ? 0.95f : 0.8f, s.topP(), "absent top_p: Qwen's value for the mode");
        }
        // no generation_config.json at all (GGUF): Qwen's recommendation per mode
        assertEquals(0.7f, SamplingParams.recommended(false, GenerationConfig.EMPTY, 1).temperature());
        assertEquals(0.6f, SamplingParams.recommended(true, GenerationConfig.EMPTY, 1).temperature());
    }

    @Test
    void aDoSampleThatIsNotABooleanIsRefused(@TempDir Path dir) {
        var e = assertThrows(ModelFormatException.class, () -> config(dir, "{\"do_sample\": \"yes\"}"));
        assertTrue(e.getMessage().endsWith("field 'do_sample' is \"yes\", expected true or false"), e.getMessage());
    }
}
