package io.flinkqwen3.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.flinkqwen3.tensor.DType;
import io.flinkqwen3.testing.Fixtures;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufCheckpointTest {
    @Test
    void configComesFromTheMetadata() {
        try (var gguf = GgufCheckpoint.open(Fixtures.GGUF.resolve("qwen3-moe-tiny-bf16.gguf"));
             var hf = SafetensorsCheckpoint.open(Fixtures.MOE)) {
            ModelConfig g = gguf.config(), h = hf.config();
            assertEquals(h.hiddenSize(), g.hiddenSize());
            assertEquals(h.headDim(), g.headDim());
            assertEquals(h.numExperts(), g.numExperts());
            assertEquals(h.numExpertsPerTok(), g.numExpertsPerTok());
            assertEquals(h.moeIntermediateSize(), g.moeIntermediateSize());
            assertEquals(h.vocabSize(), g.vocabSize());
            assertEquals(h.tieWordEmbeddings(), g.tieWordEmbeddings());
            Tensor expert = gguf.tensor("model.layers.1.mlp.experts.5.down_proj.weight");
            assertArrayEquals(new long[] {32, 24}, expert.shape());
            assertEquals(DType.BF16, expert.type());
            // the expert slice holds the same bytes as the safetensors expert
            assertArrayEquals(hf.tensor("model.layers.1.mlp.experts.5.down_proj.weight").data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE),
                    expert.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
        }
        try (var yarn = GgufCheckpoint.open(Fixtures.GGUF.resolve("qwen3-dense-yarn-q8_0.gguf"))) {
            assertTrue(yarn.config().rope().isYarn());
            assertEquals(2048, yarn.config().rope().originalMaxPositions());
            assertEquals(DType.Q8_0, yarn.tensor("model.layers.0.self_attn.q_proj.weight").type());
        }
    }

    @Test
    void tokenizerFromTheMetadataEqualsTokenizerJson() throws Exception {
        Qwen3Tokenizer fromGguf;
        try (var gguf = GgufCheckpoint.open(Fixtures.GGUF.resolve("qwen3-dense-tiny-bf16.gguf"))) {
            fromGguf = gguf.tokenizer();
        }
        JsonNode golden = new ObjectMapper().readTree(Files.readString(Fixtures.FIXTURES.resolve("tokenizer-golden.json")));
        for (JsonNode c : golden.path("encode")) {
            int[] ids = new int[c.path("ids").size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = c.path("ids").get(i).asInt();
            }
            assertArrayEquals(ids, fromGguf.encode(c.path("text").asText()), c.path("text").asText());
        }
        assertTrue(fromGguf.isSpecial(151645));
        assertEquals(151668, fromGguf.tokenId("</think>"));
    }

    @Test
    void corruptFilesGetPreciseErrors(@TempDir Path dir) throws Exception {
        Path notGguf = dir.resolve("model.gguf");
        Files.writeString(notGguf, "definitely not a gguf file");
        var e = assertThrows(ModelFormatException.class, () -> GgufCheckpoint.open(notGguf));
        assertTrue(e.getMessage().contains("not a GGUF file"), e.getMessage());

        byte[] real = Files.readAllBytes(Fixtures.GGUF.resolve("qwen3-dense-yarn-q8_0.gguf"));
        Path truncated = dir.resolve("truncated.gguf");
        Files.write(truncated, java.util.Arrays.copyOf(real, real.length / 2));
        e = assertThrows(ModelFormatException.class, () -> GgufCheckpoint.open(truncated));
        assertTrue(e.getMessage().contains("truncated") && e.getMessage().contains("tensor '"), e.getMessage());

        Path header = dir.resolve("header.gguf");
        Files.write(header, java.util.Arrays.copyOf(real, 300));
        e = assertThrows(ModelFormatException.class, () -> GgufCheckpoint.open(header));
        assertTrue(e.getMessage().contains("truncated GGUF header"), e.getMessage());
    }
}
