package io.flinkqwen3.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
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

    /** The fixture config with one change, written to a temp dir; reading it must fail naming the file and the field. */
    static void assertRefused(Path dir, Path fixture, java.util.function.Consumer<ObjectNode> change, String... expected)
            throws Exception {
        ObjectNode json = (ObjectNode) ModelConfig.JSON.readTree(Files.readString(fixture.resolve("config.json")));
        change.accept(json);
        Path file = dir.resolve("config.json");
        ModelConfig.JSON.writeValue(file.toFile(), json);
        var e = assertThrows(ModelFormatException.class, () -> ModelConfig.read(file));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        for (String part : expected) {
            assertTrue(e.getMessage().contains(part), "'" + part + "' missing from: " + e.getMessage());
        }
    }

    @Test
    void everyFieldThatSizesOrIndexesIsCheckedBeforeUse(@TempDir Path dir) throws Exception {
        Path dense = Fixtures.DENSE, moe = Fixtures.MOE, yarn = Fixtures.YARN;
        assertRefused(dir, dense, j -> j.put("num_attention_heads", 0), "'num_attention_heads' is 0", "[1, 4096]");
        assertRefused(dir, dense, j -> { j.put("num_attention_heads", 0); j.remove("head_dim"); }, "'num_attention_heads' is 0");
        assertRefused(dir, moe, j -> j.put("decoder_sparse_step", 0), "'decoder_sparse_step' is 0");
        assertRefused(dir, dense, j -> j.put("num_hidden_layers", -1), "'num_hidden_layers' is -1");
        assertRefused(dir, moe, j -> j.put("num_local_experts", Integer.MAX_VALUE), "'num_local_experts' is 2147483647", "16384");
        assertRefused(dir, moe, j -> { j.remove("num_local_experts"); j.put("num_experts", Integer.MAX_VALUE); }, "'num_experts'");
        assertRefused(dir, moe, j -> j.put("num_experts_per_tok", 9), "'num_experts_per_tok' (9) exceeds", "'num_local_experts' (8)");
        assertRefused(dir, moe, j -> j.put("num_experts_per_tok", 0), "'num_experts_per_tok' is 0");
        assertRefused(dir, moe, j -> j.putArray("mlp_only_layers").add(7), "'mlp_only_layers'", "[0, 1]");
        assertRefused(dir, dense, j -> j.put("rms_norm_eps", -1e-6), "'rms_norm_eps' is -1.0E-6", "positive");
        assertRefused(dir, dense, j -> j.put("rms_norm_eps", 1e-60), "'rms_norm_eps' is 0.0", "float precision");
        assertRefused(dir, dense, j -> j.put("rope_theta", 0), "'rope_theta' is 0.0", "> 1");
        assertRefused(dir, moe, j -> ((ObjectNode) j.get("rope_parameters")).put("rope_theta", -5), "'rope_parameters.rope_theta' is -5.0");
        assertRefused(dir, yarn, j -> ((ObjectNode) j.get("rope_parameters")).put("factor", 0.5), "'rope_parameters.factor' is 0.5");
        assertRefused(dir, yarn, j -> ((ObjectNode) j.get("rope_parameters")).put("original_max_position_embeddings", 0),
                "'rope_parameters.original_max_position_embeddings' is 0");
        assertRefused(dir, dense, j -> j.put("max_position_embeddings", 0), "'max_position_embeddings' is 0");
        assertRefused(dir, dense, j -> j.put("num_key_value_heads", 3), "'num_attention_heads' (4) is not a multiple of field 'num_key_value_heads' (3)");
        assertRefused(dir, dense, j -> j.put("head_dim", 31), "'head_dim' is 31", "even");
        assertRefused(dir, dense, j -> j.put("head_dim", 1 << 19), "'num_attention_heads' x field 'head_dim' = 2097152");
        assertRefused(dir, dense, j -> j.put("hidden_size", 1L << 40), "'hidden_size' is 1099511627776");
        assertRefused(dir, dense, j -> j.put("hidden_size", 64.5), "'hidden_size' is 64.5", "an integer");
        assertRefused(dir, dense, j -> j.put("vocab_size", -1), "'vocab_size' is -1");
        assertRefused(dir, dense, j -> j.put("eos_token_id", 151936), "'eos_token_id'", "151936");
        assertRefused(dir, dense, j -> j.putArray("eos_token_id").add(1).add("x"), "'eos_token_id'");
        assertRefused(dir, dense, j -> j.put("bos_token_id", -7), "'bos_token_id' is -7");
        assertRefused(dir, dense, j -> j.put("rope_scaling", "yes"), "'rope_scaling'", "an object");
    }

    @Test
    void oversizedOrNonObjectConfigsAreRefusedWithoutReadingThem(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("config.json");
        Files.writeString(file, "[1, 2, 3]");
        var e = assertThrows(ModelFormatException.class, () -> ModelConfig.read(file));
        assertTrue(e.getMessage().startsWith(file + ": expected a JSON object"), e.getMessage());
        try (var raf = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            raf.setLength(ModelConfig.MAX_CONFIG_BYTES + 1); // sparse: nothing is written
        }
        e = assertThrows(ModelFormatException.class, () -> ModelConfig.read(file));
        assertTrue(e.getMessage().contains(file + ": " + (ModelConfig.MAX_CONFIG_BYTES + 1) + " bytes"), e.getMessage());
    }

    @Test
    void generationConfigValuesAreChecked(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("generation_config.json");
        for (String[] c : new String[][] {
            {"{\"top_p\": 2}", "'top_p' is 2.0"}, {"{\"top_p\": 0}", "'top_p' is 0.0"},
            {"{\"temperature\": -1}", "'temperature' is -1.0"}, {"{\"top_k\": -3}", "'top_k' is -3"},
            {"{\"top_k\": 1e12}", "'top_k' is 1.0E12"}, {"{\"min_p\": \"x\"}", "'min_p' is \"x\""},
            {"{\"eos_token_id\": [-1]}", "'eos_token_id'"}}) {
            Files.writeString(file, c[0]);
            var e = assertThrows(ModelFormatException.class, () -> GenerationConfig.read(file), c[0]);
            assertTrue(e.getMessage().startsWith(file + ": ") && e.getMessage().contains(c[1]), e.getMessage());
        }
    }
}
