package io.flinkqwen3.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.tensor.DType;
import io.flinkqwen3.testing.CorruptModels;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GGUF files broken in every field that drives an allocation or an index: each is refused at open
 * with the file, the field and what was expected, never an OOM or a raw exception.
 */
class GgufValidationTest {
    static final int U32 = 4, I32 = 5, F32 = 6, STRING = 8, ARRAY = 9, U64 = 10;

    /** Writes GGUF v3 files byte by byte, so that any field can be given any value. */
    static final class Gguf {
        final List<byte[]> kvs = new ArrayList<>();
        final List<byte[]> infos = new ArrayList<>();
        long alignment = 32;
        byte[] data = new byte[0];

        static ByteBuffer le(int bytes) {
            return ByteBuffer.allocate(bytes).order(ByteOrder.LITTLE_ENDIAN);
        }

        static byte[] str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            return le(8 + b.length).putLong(b.length).put(b).array();
        }

        Gguf kv(String key, int type, byte[] value) {
            var out = new ByteArrayOutputStream();
            out.writeBytes(str(key));
            out.writeBytes(le(4).putInt(type).array());
            out.writeBytes(value);
            kvs.add(out.toByteArray());
            return this;
        }

        Gguf u32(String key, long v) {
            return kv(key, U32, le(4).putInt((int) v).array());
        }

        Gguf string(String key, String v) {
            return kv(key, STRING, str(v));
        }

        Gguf tensor(String name, int nDims, long[] dims, int ggmlType, long offset) {
            var out = new ByteArrayOutputStream();
            out.writeBytes(str(name));
            out.writeBytes(le(4).putInt(nDims).array());
            for (long d : dims) {
                out.writeBytes(le(8).putLong(d).array());
            }
            out.writeBytes(le(4).putInt(ggmlType).array());
            out.writeBytes(le(8).putLong(offset).array());
            infos.add(out.toByteArray());
            return this;
        }

        Gguf tensor(String name, long[] dims, int ggmlType, long offset) {
            return tensor(name, dims.length, dims, ggmlType, offset);
        }

        /** A valid one-tensor qwen3 file: hidden 32, 4 heads, vocab 8. */
        static Gguf valid() {
            Gguf g = new Gguf().string("general.architecture", "qwen3")
                    .u32("qwen3.embedding_length", 32).u32("qwen3.attention.head_count", 4)
                    .u32("qwen3.feed_forward_length", 64).u32("qwen3.block_count", 1)
                    .tensor("token_embd.weight", new long[] {32, 8}, 0, 0);
            g.data = new byte[32 * 8 * 4];
            return g;
        }

        Path write(Path file) throws Exception {
            var out = new ByteArrayOutputStream();
            out.writeBytes(le(24).putInt(0x46554747).putInt(3).putLong(infos.size()).putLong(kvs.size()).array());
            kvs.forEach(out::writeBytes);
            infos.forEach(out::writeBytes);
            long pad = alignment > 0 ? (alignment - out.size() % alignment) % alignment : 0;
            out.writeBytes(new byte[(int) pad]);
            out.writeBytes(data);
            Files.write(file, out.toByteArray());
            return file;
        }
    }

    static void assertRefused(Path dir, Consumer<Gguf> change, String... expected) throws Exception {
        Gguf g = Gguf.valid();
        change.accept(g);
        Path file = g.write(dir.resolve("model.gguf"));
        var e = assertThrows(ModelFormatException.class, () -> GgufCheckpoint.open(file).close());
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        for (String part : expected) {
            assertTrue(e.getMessage().contains(part), "'" + part + "' missing from: " + e.getMessage());
        }
    }

    @Test
    void theWriterMakesValidFiles(@TempDir Path dir) throws Exception {
        Gguf g = Gguf.valid().tensor("blk.0.attn_q.weight", new long[] {64, 2}, 8, 1024);
        g.data = new byte[1024 + 2 * 2 * 34];
        try (var ckpt = GgufCheckpoint.open(g.write(dir.resolve("ok.gguf")))) {
            assertEquals(32, ckpt.config().hiddenSize());
            assertEquals(8, ckpt.config().headDim());
            assertEquals(8, ckpt.config().vocabSize());
            assertEquals(DType.Q8_0, ckpt.tensor("model.layers.0.self_attn.q_proj.weight").type());
        }
    }

    @Test
    void headerFieldsAreBoundedBeforeAllocating(@TempDir Path dir) throws Exception {
        assertRefused(dir, g -> {
            g.infos.clear();
            g.tensor("token_embd.weight", 0x7fffffff, new long[] {32, 8}, 0, 0);
        }, "tensor 'token_embd.weight' has n_dims 2147483647", "1 to 4");
        assertRefused(dir, g -> g.tensor("t", new long[] {32, -1}, 0, 1024), "tensor 't' has dimension 1 = 18446744073709551615");
        assertRefused(dir, g -> g.tensor("t", new long[] {1L << 40, 1L << 40}, 0, 1024), "tensor 't'", "overflows");
        assertRefused(dir, g -> g.kv("tokenizer.ggml.tokens", ARRAY, Gguf.le(12).putInt(STRING).putLong(-1).array()),
                "'tokenizer.ggml.tokens' array length", "18446744073709551615");
        assertRefused(dir, g -> g.kv("tokenizer.ggml.tokens", ARRAY, Gguf.le(12).putInt(STRING).putLong(1L << 40).array()),
                "'tokenizer.ggml.tokens' array length", "1099511627776");
        assertRefused(dir, g -> g.kv("x", ARRAY, Gguf.le(12).putInt(77).putLong(1).array()), "'x'", "unknown type 77");
        assertRefused(dir, g -> g.kv("general.name", STRING, Gguf.le(8).putLong(-5).array()), "'general.name' has length");
        assertRefused(dir, g -> g.kv("general.name", 99, new byte[0]), "'general.name' has unknown value type 99");
        assertRefused(dir, g -> g.string("general.architecture", "qwen3"), "'general.architecture' appears twice");
    }

    @Test
    void alignmentAndOffsetsAreChecked(@TempDir Path dir) throws Exception {
        assertRefused(dir, g -> { g.u32("general.alignment", 0); g.alignment = 0; }, "'general.alignment' is 0", "power of two");
        assertRefused(dir, g -> { g.u32("general.alignment", 24); g.alignment = 24; }, "'general.alignment' is 24");
        assertRefused(dir, g -> g.string("general.alignment", "32"), "'general.alignment' is 32", "power of two");
        assertRefused(dir, g -> {
            g.tensor("blk.0.attn_norm.weight", new long[] {32}, 0, 1040);
            g.data = new byte[2048];
        }, "tensor 'blk.0.attn_norm.weight' has data offset 1040", "multiple of the alignment 32");
        assertRefused(dir, g -> {
            g.tensor("blk.0.attn_norm.weight", new long[] {32}, 0, 992);
            g.data = new byte[2048];
        }, "'token_embd.weight' [0, 1024)", "'blk.0.attn_norm.weight' [992, 1120)", "overlap");
        assertRefused(dir, g -> g.tensor("t", new long[] {32}, 0, 1024), "truncated: tensor 't' ends at byte 1472 but the file has 1344 bytes");
        // an absurd offset is reported as it is, not as the negative byte the overflowing sum gave
        assertRefused(dir, g -> g.tensor("t", new long[] {32}, 0, Long.MAX_VALUE - 63),
                "tensor 't' has data offset 9223372036854775744 + size 128 bytes, past the end of the file (1344 bytes, data section from byte 320)");
        // a dimension too large for the file is named, not taken for truncation
        assertRefused(dir, g -> g.tensor("t", new long[] {1L << 40}, 0, 1024),
                "tensor 't' has dimensions [1099511627776]: 1099511627776 elements of F32 take 4398046511104 bytes,"
                        + " more than the file's data section holds (1024 of the file's 1344 bytes)");
        assertRefused(dir, g -> g.tensor("t", new long[] {32}, 0, -32), "tensor 't' has data offset 18446744073709551584");
        assertRefused(dir, g -> {
            g.tensor("token_embd.weight", new long[] {32}, 0, 1024);
            g.data = new byte[1024 + 128];
        }, "tensor 'token_embd.weight' appears twice");
    }

    /** The two header values above in a real file, as a user reported them. */
    @Test
    void anAbsurdOffsetOrDimensionInARealFileIsNamed(@TempDir Path dir) throws Exception {
        Path offset = CorruptModels.withTensorOffset(dir.resolve("offset"), "qwen3-dense-tiny-bf16.gguf", "token_embd.weight",
                Long.MAX_VALUE - 63);
        var e = assertThrows(ModelFormatException.class, () -> GgufCheckpoint.open(offset).close());
        assertTrue(e.getMessage().startsWith(offset + ": tensor 'token_embd.weight' has data offset 9223372036854775744"
                + " + size 19447808 bytes, past the end of the file (" + Files.size(offset) + " bytes"), e.getMessage());
        Path dimension = CorruptModels.withTensorDim(dir.resolve("dimension"), "qwen3-dense-tiny-bf16.gguf", "token_embd.weight", 0,
                1L << 40);
        e = assertThrows(ModelFormatException.class, () -> GgufCheckpoint.open(dimension).close());
        assertTrue(e.getMessage().startsWith(dimension + ": tensor 'token_embd.weight' has dimensions [1099511627776, 151936]:"
                + " 167055398677774336 elements of BF16 take 334110797355548672 bytes, more than the file's data section holds"), e.getMessage());
    }

    @Test
    void quantizedRowsMustBeWholeBlocks(@TempDir Path dir) throws Exception {
        // 48 x 2 = 96 weights are three Q8_0 blocks, but a row of 48 is not a whole number of blocks
        assertRefused(dir, g -> {
            g.tensor("blk.0.attn_q.weight", new long[] {48, 2}, 8, 1024);
            g.data = new byte[1024 + 3 * 34];
        }, "tensor 'blk.0.attn_q.weight' of type Q8_0 has rows of 48 weights", "multiple of its block size 32");
        assertRefused(dir, g -> g.tensor("t", new long[] {100}, 12, 1024), "tensor 't' of type Q4_K has rows of 100", "256");
        assertRefused(dir, g -> g.tensor("t", new long[] {100}, 13, 1024), "tensor 't' of type Q5_K has rows of 100", "256");
    }

    @Test
    void anUnsupportedTypeIsNamed(@TempDir Path dir) throws Exception {
        assertRefused(dir, g -> g.tensor("blk.0.ffn_up.weight", new long[] {256}, 16, 1024),
                "tensor 'blk.0.ffn_up.weight' has ggml type 16 (IQ2_XXS)", "supported are", "Q5_K", "IQ4_XS", "llama-quantize");
        assertRefused(dir, g -> g.tensor("t", new long[] {32}, 99, 1024), "tensor 't' has ggml type 99 (unknown)");
    }

    @Test
    void modelMetadataIsChecked(@TempDir Path dir) throws Exception {
        assertRefused(dir, g -> g.kvs.set(2, Gguf.valid().u32("qwen3.attention.head_count", 0).kvs.getLast()),
                "'qwen3.attention.head_count' is 0");
        assertRefused(dir, g -> g.kvs.set(4, Gguf.valid().u32("qwen3.block_count", 0xFFFFFFFFL).kvs.getLast()),
                "'qwen3.block_count' is 4294967295");
        assertRefused(dir, g -> g.kvs.set(1, Gguf.valid().string("qwen3.embedding_length", "32").kvs.getLast()),
                "'qwen3.embedding_length' is 32 (String)", "an integer");
        assertRefused(dir, g -> g.u32("qwen3.attention.head_count_kv", 3), "'qwen3.attention.head_count' (4) is not a multiple of field 'qwen3.attention.head_count_kv' (3)");
        assertRefused(dir, g -> g.kv("qwen3.rope.freq_base", F32, Gguf.le(4).putFloat(0).array()), "'qwen3.rope.freq_base' is 0.0");
        assertRefused(dir, g -> g.kv("qwen3.attention.layer_norm_rms_epsilon", F32, Gguf.le(4).putFloat(-1e-6f).array()),
                "'qwen3.attention.layer_norm_rms_epsilon'");
        assertRefused(dir, g -> g.u32("qwen3.context_length", 0), "'qwen3.context_length' is 0");
        assertRefused(dir, g -> g.u32("tokenizer.ggml.eos_token_id", 8), "'tokenizer.ggml.eos_token_id' is 8", "[-1, 7]");
        assertRefused(dir, g -> {
            g.infos.clear();
            g.tensor("token_embd.weight", new long[] {256}, 0, 0);
        }, "tensor 'token_embd.weight' has dimensions [256]");
        assertRefused(dir, g -> {
            g.kvs.set(0, Gguf.valid().string("general.architecture", "qwen3moe").kvs.getLast());
            for (int i = 1; i < 5; i++) {
                g.kvs.set(i, Gguf.valid().string("x" + i, "y").kvs.getLast());
            }
            g.u32("qwen3moe.embedding_length", 32).u32("qwen3moe.attention.head_count", 4).u32("qwen3moe.feed_forward_length", 64)
                    .u32("qwen3moe.block_count", 1).u32("qwen3moe.expert_used_count", 2)
                    .u32("qwen3moe.expert_count", 0x7fffffff);
        }, "'qwen3moe.expert_count' is 2147483647");
    }

    /** A GGUF array of strings. */
    static byte[] strings(List<String> values) {
        var out = new ByteArrayOutputStream();
        out.writeBytes(Gguf.le(12).putInt(STRING).putLong(values.size()).array());
        values.forEach(v -> out.writeBytes(Gguf.str(v)));
        return out.toByteArray();
    }

    /** The 256 byte-level symbols of GPT-2's alphabet, which every byte-level BPE vocabulary holds. */
    static List<String> byteSymbols() {
        List<String> symbols = new ArrayList<>();
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            symbols.add(String.valueOf((char) (printable ? b : next++)));
        }
        return symbols;
    }

    @Test
    void theTokenizerMustFitTheVocabularyAndItsMetadataIsTypeChecked(@TempDir Path dir) throws Exception {
        Gguf g = Gguf.valid().string("tokenizer.ggml.model", "gpt2").kv("tokenizer.ggml.tokens", ARRAY, strings(byteSymbols()));
        try (var ckpt = GgufCheckpoint.open(g.write(dir.resolve("tokens.gguf")))) {
            // as llama.cpp: the vocabulary is the tokenizer's, and token_embd.weight (8 rows) is checked against it at load
            assertEquals(256, ckpt.config().vocabSize());
            assertEquals(256, Checkpoints.tokenizer(ckpt).vocabSize());
        }
        Path file = g.u32("qwen3.vocab_size", 8).write(dir.resolve("tok.gguf"));
        try (var ckpt = GgufCheckpoint.open(file)) {
            assertEquals(8, ckpt.config().vocabSize(), "qwen3.vocab_size comes first");
            assertEquals(256, ckpt.tokenizer().vocabSize(), "the tokenizer itself loads");
            var e = assertThrows(ModelFormatException.class, () -> Checkpoints.tokenizer(ckpt));
            assertTrue(e.getMessage().startsWith(file + ": the tokenizer has ids up to 255")
                    && e.getMessage().contains("(qwen3.vocab_size) is 8"), e.getMessage());
        }
        List<String> broken = new ArrayList<>(byteSymbols());
        broken.remove(0);
        broken.add("x");
        Path missingByte = Gguf.valid().string("tokenizer.ggml.model", "gpt2").kv("tokenizer.ggml.tokens", ARRAY, strings(broken))
                .write(dir.resolve("missing-byte.gguf"));
        try (var ckpt = GgufCheckpoint.open(missingByte)) {
            var e = assertThrows(ModelFormatException.class, ckpt::tokenizer);
            assertTrue(e.getMessage().startsWith(missingByte + ": tokenizer.ggml.* metadata: ") && e.getMessage().contains("byte 0x00"),
                    e.getMessage());
        }
        Path badMerge = Gguf.valid().string("tokenizer.ggml.model", "gpt2").kv("tokenizer.ggml.tokens", ARRAY, strings(byteSymbols()))
                .kv("tokenizer.ggml.merges", ARRAY, strings(List.of("! \"", "nospace"))).write(dir.resolve("bad-merge.gguf"));
        try (var ckpt = GgufCheckpoint.open(badMerge)) {
            var e = assertThrows(ModelFormatException.class, ckpt::tokenizer);
            assertTrue(e.getMessage().contains("'tokenizer.ggml.merges'[1] is nospace"), e.getMessage());
        }
        Path numbers = Gguf.valid().string("tokenizer.ggml.model", "gpt2")
                .kv("tokenizer.ggml.tokens", ARRAY, Gguf.le(12 + 8).putInt(U32).putLong(2).putInt(1).putInt(2).array())
                .write(dir.resolve("numbers.gguf"));
        try (var ckpt = GgufCheckpoint.open(numbers)) {
            var e = assertThrows(ModelFormatException.class, ckpt::tokenizer);
            assertTrue(e.getMessage().contains("'tokenizer.ggml.tokens'[0] is not a string"), e.getMessage());
        }
    }
}
