package io.flinkqwen3.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelConfigTest {
    @Test
    void readsThePublishedQwen3Form() {
        ModelConfig c = ModelConfig.read(Fixtures.DENSE.resolve("config.json"));
        assertEquals("qwen3", c.modelType());
        assertEquals(64, c.hiddenSize());
        assertEquals(32, c.headDim(), "head_dim is independent of hidden/heads");
        assertEquals(128, c.qDim());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(1_000_000.0, c.rope().theta());
        assertFalse(c.rope().isYarn());
        assertFalse(c.isMoe());
        assertEquals(List.of(151645), c.eosTokenIds());
    }

    @Test
    void readsTheTransformers5FormWithExperts() {
        ModelConfig c = ModelConfig.read(Fixtures.MOE.resolve("config.json"));
        assertEquals(8, c.numExperts(), "num_local_experts");
        assertEquals(2, c.numExpertsPerTok());
        assertEquals(24, c.moeIntermediateSize());
        assertTrue(c.normTopkProb());
        assertTrue(c.isMoeLayer(0) && c.isMoeLayer(1));
        assertEquals(1_000_000.0, c.rope().theta(), "rope_parameters.rope_theta");
        ModelConfig yarn = ModelConfig.read(Fixtures.YARN.resolve("config.json"));
        assertTrue(yarn.rope().isYarn());
        assertEquals(4.0, yarn.rope().factor());
        assertEquals(2048, yarn.rope().originalMaxPositions());
    }

    @Test
    void sparseStepAndMlpOnlyLayersDecideWhichLayersAreMoe(@TempDir Path dir) throws Exception {
        String json = Files.readString(Fixtures.MOE.resolve("config.json"))
                .replace("\"decoder_sparse_step\": 1", "\"decoder_sparse_step\": 2")
                .replace("\"mlp_only_layers\": []", "\"mlp_only_layers\": [3]")
                .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 6");
        Files.writeString(dir.resolve("config.json"), json);
        ModelConfig c = ModelConfig.read(dir.resolve("config.json"));
        assertEquals(Set.of(3), c.mlpOnlyLayers());
        assertFalse(c.isMoeLayer(0));
        assertTrue(c.isMoeLayer(1));
        assertFalse(c.isMoeLayer(3), "mlp_only_layers wins");
        assertTrue(c.isMoeLayer(5));
    }

    @Test
    void errorsNameTheFileAndTheField(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("config.json");
        Files.writeString(file, "{\"model_type\": \"qwen3\", \"hidden_size\": \"big\"}");
        var e = assertThrows(ModelFormatException.class, () -> ModelConfig.read(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("'hidden_size'"), e.getMessage());
        Files.writeString(file, "{\"model_type\": \"llama\"}");
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.read(file));
        assertTrue(e.getMessage().contains("'llama'"), e.getMessage());
    }

    @Test
    void generationConfigAcceptsAnEosIdOrAList(@TempDir Path dir) throws Exception {
        assertEquals(List.of(151645), GenerationConfig.read(Fixtures.DENSE.resolve("generation_config.json")).eosTokenIds());
        Path file = dir.resolve("generation_config.json");
        Files.writeString(file, "{\"do_sample\": true, \"eos_token_id\": [151645, 151643], \"temperature\": 0.6, \"top_k\": 20, \"top_p\": 0.95}");
        GenerationConfig g = GenerationConfig.read(file);
        assertEquals(List.of(151645, 151643), g.eosTokenIds());
        assertEquals(0.6f, g.temperature());
        assertEquals(20, g.topK());
        assertEquals(0.95f, g.topP());
    }
}
