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

    static void assertRefused(Path dir, String... expected) {
        var e = assertThrows(ModelFormatException.class, () -> SafetensorsCheckpoint.open(dir).close());
        for (String part : expected) {
            assertTrue(e.getMessage().contains(part), "'" + part + "' missing from: " + e.getMessage());
        }
    }

    @Test
    void shapesAndOffsetsAreCheckedAgainstEachOtherAndTheFileSize(@TempDir Path dir) throws Exception {
        Path d;
        var n = new int[1];
        java.util.function.Supplier<Path> fresh = () -> {
            try {
                return Files.createDirectories(dir.resolve("case" + n[0]++));
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        };
        d = brokenCopy(fresh.get(), "{\"w\": {\"dtype\": \"F32\", \"shape\": [-4, -4], \"data_offsets\": [0, 64]}}", 64);
        assertRefused(d, d.resolve("model.safetensors") + ": tensor 'w' has shape [-4,-4]", "non-negative");
        d = brokenCopy(fresh.get(), "{\"w\": {\"dtype\": \"F32\", \"shape\": [4, \"x\"], \"data_offsets\": [0, 64]}}", 64);
        assertRefused(d, d.resolve("model.safetensors") + ": tensor 'w' has shape [4,\"x\"]");
        d = brokenCopy(fresh.get(), "{\"w\": {\"dtype\": \"F32\", \"shape\": [4611686018427387904, 4], \"data_offsets\": [0, 64]}}", 64);
        assertRefused(d, d.resolve("model.safetensors") + ": tensor 'w'", "overflows");
        d = brokenCopy(fresh.get(), "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [-16, 0]}}", 64);
        assertRefused(d, d.resolve("model.safetensors") + ": tensor 'w' has data_offsets [-16,0]");
        d = brokenCopy(fresh.get(), "{\"a\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [0, 64]},"
                + " \"b\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [32, 96]}}", 96);
        assertRefused(d, d.resolve("model.safetensors") + ": tensors 'a' (data_offsets [0, 64)) and 'b' (data_offsets [32, 96)) overlap");
        d = brokenCopy(fresh.get(), "{\"a\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [0, 64]},"
                + " \"b\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [0, 64]}}", 64);
        assertRefused(d, d.resolve("model.safetensors") + ": tensors 'a'", "and 'b'", "overlap");
        d = brokenCopy(fresh.get(), "{\"a\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [8, 72]}}", 72);
        assertRefused(d, d.resolve("model.safetensors") + ": tensor 'a' starts at data offset 8, expected 0");
        d = brokenCopy(fresh.get(), "{\"a\": {\"dtype\": \"F32\", \"shape\": [16], \"data_offsets\": [0, 64]}}", 100);
        assertRefused(d, d.resolve("model.safetensors") + ": ", "bytes, but the header describes");
    }

    /** A copy of the dense fixture whose index names {@code target} for one tensor (the shards are links to the fixture's). */
    static Path indexNaming(Path dir, String target) throws Exception {
        for (String f : new String[] {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
            Files.createSymbolicLink(dir.resolve(f), Fixtures.DENSE.resolve(f).toAbsolutePath());
        }
        String index = Files.readString(Fixtures.DENSE.resolve("model.safetensors.index.json"))
                .replace("\"model.norm.weight\": \"model-00002-of-00002.safetensors\"", "\"model.norm.weight\": " + target);
        assertTrue(index.contains(target), index);
        Files.writeString(dir.resolve("model.safetensors.index.json"), index);
        return dir;
    }

    @Test
    void theIndexOpensOnlyFilesInsideTheModelDirectory(@TempDir Path root) throws Exception {
        Path outside = Files.writeString(root.resolve("secret.safetensors"), "not for the model");
        int i = 0;
        for (String target : new String[] {"\"../../../etc/passwd\"", "\"/etc/passwd\"", "\"../secret.safetensors\"",
                "\"sub/../../secret.safetensors\"", "\"" + outside.toAbsolutePath() + "\"", "\"\"", "\".\"", "7", "{\"f\": 1}"}) {
            Path dir = indexNaming(Files.createDirectories(root.resolve("m" + i++)), target);
            var e = assertThrows(ModelFormatException.class, () -> SafetensorsCheckpoint.open(dir).close(), target);
            assertTrue(e.getMessage().contains("model.safetensors.index.json: weight_map['model.norm.weight'] is ")
                    && e.getMessage().contains("expected the name of a file inside the model directory"), e.getMessage());
        }
        // the same index naming the real shard opens, through links as in the Hugging Face cache
        Path ok = indexNaming(Files.createDirectories(root.resolve("ok")), "\"./model-00002-of-00002.safetensors\"");
        try (var ckpt = SafetensorsCheckpoint.open(ok)) {
            assertEquals("model-00002-of-00002.safetensors", ckpt.tensor("model.norm.weight").file());
        }
    }

    @Test
    void aTokenizerWithIdsBeyondTheVocabularyIsRefusedAtLoad(@TempDir Path dir) throws Exception {
        for (String f : new String[] {"model.safetensors", "tokenizer.json"}) {
            Files.createSymbolicLink(dir.resolve(f), Fixtures.MOE.resolve(f).toAbsolutePath());
        }
        Files.writeString(dir.resolve("config.json"),
                Files.readString(Fixtures.MOE.resolve("config.json")).replace("\"vocab_size\": 151936", "\"vocab_size\": 151660"));
        try (var ckpt = SafetensorsCheckpoint.open(dir)) {
            var e = assertThrows(ModelFormatException.class, () -> Checkpoints.tokenizer(ckpt));
            assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer.json") + ": the tokenizer has ids up to 151668")
                    && e.getMessage().contains("vocab_size in config.json) is 151660"), e.getMessage());
        }
        try (var ckpt = SafetensorsCheckpoint.open(Fixtures.MOE)) {
            assertEquals(151669, Checkpoints.tokenizer(ckpt).vocabSize(), "the fixture's tokenizer fits its model");
        }
    }
}
