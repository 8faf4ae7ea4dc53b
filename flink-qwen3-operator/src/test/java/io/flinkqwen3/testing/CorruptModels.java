package io.flinkqwen3.testing;

import io.flinkqwen3.model.GgufFile;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Damaged copies of the fixture models, as a user could end up with them (an incomplete or wrong upload). */
public final class CorruptModels {
    private CorruptModels() {}

    /**
     * A copy of the dense fixture whose final norm is missing ('model.norm.weight' renamed in the
     * shard and the index): everything before it loads and is packed, then loading fails.
     */
    public static Path withoutFinalNorm(Path dir) throws Exception {
        Files.createDirectories(dir);
        try (var files = Files.list(Fixtures.DENSE)) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        rename(dir.resolve("model.safetensors.index.json"));
        rename(dir.resolve("model-00002-of-00002.safetensors"));
        return dir;
    }

    /**
     * A copy of the Q8_0 GGUF fixture in which the f16 scale of the first block of
     * {@code blk.0.attn_q.weight} (transformers' model.layers.0.self_attn.q_proj.weight) is NaN: the
     * file opens, packing that matrix fails.
     */
    public static Path withNanScale(Path dir) throws Exception {
        Files.createDirectories(dir);
        Path source = Fixtures.GGUF.resolve("qwen3-dense-yarn-q8_0.gguf"), copy = dir.resolve("qwen3-nan-scale.gguf");
        byte[] firstBlock;
        try (var gguf = GgufFile.open(source)) {
            firstBlock = gguf.tensors().get("blk.0.attn_q.weight").data().asSlice(0, 34).toArray(ValueLayout.JAVA_BYTE);
        }
        byte[] bytes = Files.readAllBytes(source);
        int at = indexOf(bytes, firstBlock);
        if (at < 0) {
            throw new IllegalStateException(source + ": the first block of blk.0.attn_q.weight was not found");
        }
        bytes[at] = 0x00; // f16 0x7E00, little-endian: NaN
        bytes[at + 1] = 0x7E;
        Files.write(copy, bytes);
        return copy;
    }

    /**
     * A copy of the dense BF16 GGUF fixture whose first weight of blk.0.attn_q.weight is NaN (what a
     * damaged download holds); loaded as it is or quantized at load, it must be refused naming row 0,
     * column 0.
     */
    public static Path withNanWeight(Path dir) throws Exception {
        Files.createDirectories(dir);
        Path source = Fixtures.GGUF.resolve("qwen3-dense-tiny-bf16.gguf"), copy = dir.resolve("qwen3-nan-weight.gguf");
        byte[] firstWeights;
        try (var gguf = GgufFile.open(source)) {
            firstWeights = gguf.tensors().get("blk.0.attn_q.weight").data().asSlice(0, 64).toArray(ValueLayout.JAVA_BYTE);
        }
        byte[] bytes = Files.readAllBytes(source);
        int at = indexOf(bytes, firstWeights);
        if (at < 0) {
            throw new IllegalStateException(source + ": the first weights of blk.0.attn_q.weight were not found");
        }
        bytes[at] = (byte) 0xC0; // bf16 0x7FC0, little-endian: NaN
        bytes[at + 1] = 0x7F;
        Files.write(copy, bytes);
        return copy;
    }

    /**
     * A copy of the dense fixture whose config.json gives {@code vocabSize} as vocab_size, which its
     * embedding ([151936, 64]) and the tokenizer do not share.
     */
    public static Path withVocabSize(Path dir, int vocabSize) throws Exception {
        Files.createDirectories(dir);
        try (var files = Files.list(Fixtures.DENSE)) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        Path config = dir.resolve("config.json");
        var json = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper().readTree(config.toFile());
        json.put("vocab_size", vocabSize);
        config.toFile().setWritable(true);
        Files.writeString(config, json.toPrettyString());
        return dir;
    }

    /**
     * A copy of the GGUF fixture {@code fixture} whose header gives tensor {@code tensor} the value
     * {@code value} for dimension {@code dim} (ggml order: fastest first); the data is left as it is.
     */
    public static Path withTensorDim(Path dir, String fixture, String tensor, int dim, long value) throws Exception {
        return withTensorInfo(dir, fixture, tensor, (header, nDims) -> {
            if (dim >= nDims) {
                throw new IllegalArgumentException(tensor + " has " + nDims + " dimensions, not " + (dim + 1));
            }
            header.putLong(header.position() + 4 + 8 * dim, value);
        });
    }

    /** A copy of the GGUF fixture {@code fixture} whose header gives tensor {@code tensor} the data offset {@code offset}. */
    public static Path withTensorOffset(Path dir, String fixture, String tensor, long offset) throws Exception {
        return withTensorInfo(dir, fixture, tensor, (header, nDims) -> header.putLong(header.position() + 4 + 8 * nDims + 4, offset));
    }

    /** Changes a tensor info in place: {@code change} gets the file positioned at its n_dims field, and n_dims. */
    private static Path withTensorInfo(Path dir, String fixture, String tensor, java.util.function.ObjIntConsumer<ByteBuffer> change)
            throws Exception {
        Files.createDirectories(dir);
        Path source = Fixtures.GGUF.resolve(fixture), copy = dir.resolve(fixture.replace(".gguf", "-damaged.gguf"));
        byte[] bytes = Files.readAllBytes(source);
        byte[] name = tensor.getBytes(StandardCharsets.UTF_8);
        byte[] pattern = ByteBuffer.allocate(8 + name.length).order(ByteOrder.LITTLE_ENDIAN).putLong(name.length).put(name).array();
        var file = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        // the tensor info is the occurrence followed by a plausible n_dims (a token spelling could hold the name too)
        for (int at = indexOf(bytes, pattern, 0); at >= 0; at = indexOf(bytes, pattern, at + 1)) {
            int nDims = file.getInt(at + pattern.length);
            if (nDims >= 1 && nDims <= 4) { // GGML_MAX_DIMS
                change.accept(file.position(at + pattern.length), nDims);
                Files.write(copy, bytes);
                return copy;
            }
        }
        throw new IllegalStateException(source + ": no tensor info for " + tensor);
    }

    /** Renames the tensor in place (same length, so offsets and the header length stay valid). */
    private static void rename(Path file) throws Exception {
        byte[] bytes = Files.readAllBytes(file);
        byte[] from = "\"model.norm.weight\"".getBytes(StandardCharsets.US_ASCII);
        byte[] to = "\"model.norm.xeight\"".getBytes(StandardCharsets.US_ASCII);
        int at = indexOf(bytes, from);
        if (at < 0) {
            throw new IllegalStateException(file + " does not name model.norm.weight");
        }
        System.arraycopy(to, 0, bytes, at, to.length);
        file.toFile().setWritable(true);
        Files.write(file, bytes);
    }

    private static int indexOf(byte[] bytes, byte[] pattern) {
        return indexOf(bytes, pattern, 0);
    }

    private static int indexOf(byte[] bytes, byte[] pattern, int from) {
        outer:
        for (int i = from; i + pattern.length <= bytes.length; i++) {
            for (int j = 0; j < pattern.length; j++) {
                if (bytes[i + j] != pattern[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
