package io.flinkqwen3.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.runtime.Qwen3Model;
import io.flinkqwen3.tensor.DType;
import io.flinkqwen3.tensor.Parallel;
import io.flinkqwen3.testing.Fixtures;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Loading real checkpoints, and the errors for every way a checkpoint can be broken. */
class SafetensorsCheckpointTest {

    @Test
    void opensAShardedCheckpointThroughItsIndex() {
        try (var ckpt = SafetensorsCheckpoint.open(Fixtures.DENSE)) {
            Tensor embed = ckpt.tensor("model.embed_tokens.weight");
            assertEquals(DType.BF16, embed.type());
            assertEquals("model-00001-of-00002.safetensors", embed.file());
            assertEquals(151936L * 64 * 2, embed.data().byteSize());
            assertTrue(ckpt.tensorNames().stream().anyMatch(n -> n.startsWith("model.layers.2.")));
            assertEquals(Files.exists(Fixtures.DENSE.resolve("model-00002-of-00002.safetensors")), true);
        }
    }

    /** Copies a fixture directory and writes a safetensors file with the given header and data size. */
    static Path brokenCopy(Path dir, String header, int dataBytes) throws Exception {
        Files.copy(Fixtures.YARN.resolve("config.json"), dir.resolve("config.json"));
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(h.length).put(h);
        Files.write(dir.resolve("model.safetensors"), buf.array());
        return dir;
    }

    @Test
    void missingFilesAreNamed(@TempDir Path dir) throws Exception {
        Files.copy(Fixtures.YARN.resolve("config.json"), dir.resolve("config.json"));
        var e = assertThrows(ModelFormatException.class, () -> SafetensorsCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void invalidHeaderJson(@TempDir Path dir) throws Exception {
        brokenCopy(dir, "{\"a\": [1, 2", 0);
        var e = assertThrows(ModelFormatException.class, () -> SafetensorsCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("invalid header JSON"), e.getMessage());
    }

    @Test
    void truncatedData(@TempDir Path dir) throws Exception {
        brokenCopy(dir, "{\"w\": {\"dtype\": \"F32\", \"shape\": [4, 4], \"data_offsets\": [0, 64]}}", 10);
        var e = assertThrows(ModelFormatException.class, () -> SafetensorsCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("truncated") && e.getMessage().contains("'w'"), e.getMessage());
    }

    @Test
    void unsupportedDtype(@TempDir Path dir) throws Exception {
        brokenCopy(dir, "{\"w\": {\"dtype\": \"F8_E4M3\", \"shape\": [4], \"data_offsets\": [0, 4]}}", 4);
        var e = assertThrows(ModelFormatException.class, () -> SafetensorsCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("F8_E4M3") && e.getMessage().contains("'w'"), e.getMessage());
    }

    @Test
    void missingTensorAndWrongShapeAreCheckedAgainstTheConfig(@TempDir Path dir) throws Exception {
        brokenCopy(dir, "{\"model.embed_tokens.weight\": {\"dtype\": \"F32\", \"shape\": [4096, 32], \"data_offsets\": [0, 524288]}}", 524288);
        try (var parallel = new Parallel(1)) {
            var e = assertThrows(ModelFormatException.class, () -> Qwen3Model.load(SafetensorsCheckpoint.open(dir), parallel));
            assertTrue(e.getMessage().contains("'model.embed_tokens.weight'") && e.getMessage().contains("[4096, 32]")
                    && e.getMessage().contains("[4096, 64]"), e.getMessage());
        }
        Path other = Files.createDirectories(dir.resolve("other"));
        brokenCopy(other, "{\"model.embed_tokens.weight\": {\"dtype\": \"F32\", \"shape\": [4096, 64], \"data_offsets\": [0, 1048576]}}", 1048576);
        try (var parallel = new Parallel(1)) {
            var e = assertThrows(ModelFormatException.class, () -> Qwen3Model.load(SafetensorsCheckpoint.open(other), parallel));
            assertTrue(e.getMessage().contains("'model.layers.0.self_attn.q_proj.weight' missing"), e.getMessage());
        }
    }
}
