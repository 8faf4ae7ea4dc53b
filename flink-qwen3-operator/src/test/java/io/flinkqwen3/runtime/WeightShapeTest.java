package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.model.ModelFormatException;
import io.flinkqwen3.testing.CorruptModels;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A weight whose shape disagrees with the config is refused at load, whichever of the two is wrong. */
class WeightShapeTest {
    static EngineOptions options() {
        return new EngineOptions(2, 8, 512, 64);
    }

    /** The vocabulary comes from the GGUF's tokenizer metadata, not from token_embd.weight, so a row short is noticed. */
    @Test
    void aGgufEmbeddingShorterThanTheVocabularyIsRefused(@TempDir Path dir) throws Exception {
        Path corrupt = CorruptModels.withTensorDim(dir, "qwen3-dense-tiny-bf16.gguf", "token_embd.weight", 1, 151935);
        try (var checkpoint = Checkpoints.open(corrupt)) {
            assertEquals(151936, checkpoint.config().vocabSize(), "the length of tokenizer.ggml.tokens");
        }
        var e = assertThrows(ModelFormatException.class, () -> Qwen3Engine.open(corrupt.toString(), options()));
        assertEquals(corrupt.getFileName() + ":token_embd.weight: tensor 'model.embed_tokens.weight' has shape [151935, 64],"
                + " expected [151936, 64] (vocab_size x hidden_size)", e.getMessage());
    }

    @Test
    void aSafetensorsEmbeddingThatDisagreesWithVocabSizeIsRefused(@TempDir Path dir) throws Exception {
        Path corrupt = CorruptModels.withVocabSize(dir, 151935);
        var e = assertThrows(ModelFormatException.class, () -> Qwen3Engine.open(corrupt.toString(), options()));
        assertEquals("model-00001-of-00002.safetensors: tensor 'model.embed_tokens.weight' has shape [151936, 64],"
                + " expected [151935, 64] (vocab_size x hidden_size)", e.getMessage());
    }

    @Test
    void aLayerWeightNamesTheConfigFieldsOfItsShape(@TempDir Path dir) throws Exception {
        Path corrupt = CorruptModels.withTensorDim(dir, "qwen3-dense-tiny-bf16.gguf", "blk.1.ffn_down.weight", 0, 48);
        try (var checkpoint = Checkpoints.open(corrupt)) {
            var e = assertThrows(ModelFormatException.class, () -> Qwen3Model.load(checkpoint, Fixtures.PARALLEL, 0));
            assertTrue(e.getMessage().endsWith("tensor 'model.layers.1.mlp.down_proj.weight' has shape [64, 48],"
                    + " expected [64, 96] (hidden_size x intermediate_size)"), e.getMessage());
        }
    }
}
