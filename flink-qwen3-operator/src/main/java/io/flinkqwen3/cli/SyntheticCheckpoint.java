package io.flinkqwen3.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.tensor.Parallel;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * {@code qwen3 synth}: writes a Hugging Face checkpoint with the real shapes of a Qwen3 model and
 * random BF16 weights (uniform with variance 1/fan_in, norms near 1), so benchmarks run without
 * downloading real weights.
 */
final class SyntheticCheckpoint {
    /** Published shapes (QWEN3-SPEC.md section 1). */
    record Shape(int hidden, int intermediate, int layers, int heads, int kvHeads, int headDim, int experts, int expertsPerTok,
                 int moeIntermediate, boolean tied) {
        /** The shape of that name, or null when there is none (names: {@link Shapes}). */
        static Shape named(String name) {
            return switch (name) {
                case "qwen3-0.6b" -> new Shape(1024, 3072, 28, 16, 8, 128, 0, 0, 0, true);
                case "qwen3-8b" -> new Shape(4096, 12288, 36, 32, 8, 128, 0, 0, 0, false);
                case "qwen3-30b-a3b" -> new Shape(2048, 6144, 48, 32, 4, 128, 128, 8, 768, false);
                default -> null;
            };
        }

        Shape withLayers(int n) {
            return new Shape(hidden, intermediate, n, heads, kvHeads, headDim, experts, expertsPerTok, moeIntermediate, tied);
        }
    }

    /** The names {@link Shape#named} knows (listed by --help). */
    static final class Shapes implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return List.of("qwen3-0.6b", "qwen3-8b", "qwen3-30b-a3b").iterator();
        }
    }

    static final int VOCAB = 151936;

    private SyntheticCheckpoint() {}

    /**
     * Writes the checkpoint into {@code out}, a new or empty directory (the synth command refuses
     * another), each file complete under its final name or not there at all.
     */
    static void write(Shape s, Path out, Path tokenizerDir, int threads, java.io.PrintStream log) throws IOException {
        Files.createDirectories(out);
        Map<String, long[]> tensors = new LinkedHashMap<>();
        tensors.put("model.embed_tokens.weight", new long[] {VOCAB, s.hidden()});
        for (int l = 0; l < s.layers(); l++) {
            String p = "model.layers." + l + ".";
            tensors.put(p + "input_layernorm.weight", new long[] {s.hidden()});
            tensors.put(p + "self_attn.q_proj.weight", new long[] {(long) s.heads() * s.headDim(), s.hidden()});
            tensors.put(p + "self_attn.k_proj.weight", new long[] {(long) s.kvHeads() * s.headDim(), s.hidden()});
            tensors.put(p + "self_attn.v_proj.weight", new long[] {(long) s.kvHeads() * s.headDim(), s.hidden()});
            tensors.put(p + "self_attn.o_proj.weight", new long[] {s.hidden(), (long) s.heads() * s.headDim()});
            tensors.put(p + "self_attn.q_norm.weight", new long[] {s.headDim()});
            tensors.put(p + "self_attn.k_norm.weight", new long[] {s.headDim()});
            tensors.put(p + "post_attention_layernorm.weight", new long[] {s.hidden()});
            if (s.experts() > 0) {
                tensors.put(p + "mlp.gate.weight", new long[] {s.experts(), s.hidden()});
                for (int e = 0; e < s.experts(); e++) {
                    String x = p + "mlp.experts." + e + ".";
                    tensors.put(x + "gate_proj.weight", new long[] {s.moeIntermediate(), s.hidden()});
                    tensors.put(x + "up_proj.weight", new long[] {s.moeIntermediate(), s.hidden()});
                    tensors.put(x + "down_proj.weight", new long[] {s.hidden(), s.moeIntermediate()});
                }
            } else {
                tensors.put(p + "mlp.gate_proj.weight", new long[] {s.intermediate(), s.hidden()});
                tensors.put(p + "mlp.up_proj.weight", new long[] {s.intermediate(), s.hidden()});
                tensors.put(p + "mlp.down_proj.weight", new long[] {s.hidden(), s.intermediate()});
            }
        }
        tensors.put("model.norm.weight", new long[] {s.hidden()});
        if (!s.tied()) {
            tensors.put("lm_head.weight", new long[] {VOCAB, s.hidden()});
        }

        ObjectNode header = ModelConfig.JSON.createObjectNode();
        long offset = 0;
        for (var e : tensors.entrySet()) {
            long bytes = 2;
            for (long d : e.getValue()) {
                bytes *= d;
            }
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", "BF16");
            var shape = t.putArray("shape");
            for (long d : e.getValue()) {
                shape.add(d);
            }
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] headerBytes = ModelConfig.JSON.writeValueAsBytes(header);
        int padded = (headerBytes.length + 7) / 8 * 8;
        long data = offset, size = 8 + padded + data;
        Path file = out.resolve("model.safetensors");
        log.printf("synth: writing %s (%.2f GB, %d tensors)%n", file, size / 1e9, tensors.size());
        writeAtomically(file, tmp -> {
            try (var channel = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE);
                 var arena = Arena.ofShared();
                 var parallel = new Parallel(threads)) {
                MemorySegment seg = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
                seg.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, padded);
                MemorySegment.copy(headerBytes, 0, seg, ValueLayout.JAVA_BYTE, 8, headerBytes.length);
                for (int i = headerBytes.length; i < padded; i++) {
                    seg.set(ValueLayout.JAVA_BYTE, 8 + i, (byte) ' ');
                }
                long at = 8 + padded, written = 0, lastReport = 0;
                int index = 0;
                for (var e : tensors.entrySet()) {
                    long[] shape = e.getValue();
                    long elements = shape.length == 1 ? shape[0] : shape[0] * shape[1];
                    boolean norm = shape.length == 1;
                    double range = norm ? 0.25 : Math.sqrt(3.0 / shape[shape.length - 1]);
                    fill(seg.asSlice(at, elements * 2), elements, norm, range, 0x9E3779B97F4A7C15L * ++index, parallel);
                    at += elements * 2;
                    written += elements * 2;
                    if (written - lastReport > 500_000_000L) {
                        log.printf("synth: %.1f / %.1f GB%n", written / 1e9, data / 1e9);
                        lastReport = written;
                    }
                }
                seg.force();
            }
        });
        if (tokenizerDir != null) {
            for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
                writeAtomically(out.resolve(f), tmp -> Files.copy(tokenizerDir.resolve(f), tmp));
            }
        }
        writeConfig(s, out);
        log.printf("synth: done: %s%n", out);
    }

    /** Writes one file: {@code writer} creates the path it is given (CREATE_NEW), never the final name itself. */
    @FunctionalInterface
    interface FileWriter {
        void write(Path file) throws IOException;
    }

    /**
     * Writes {@code target} through a temporary file in the same directory, synced and then renamed
     * to {@code target} atomically: a crash or a failed write never leaves a half-written file under
     * the final name (the temporary file is deleted on failure).
     */
    static void writeAtomically(Path target, FileWriter writer) throws IOException {
        Path tmp = target.resolveSibling("." + target.getFileName() + "."
                + Long.toUnsignedString(ThreadLocalRandom.current().nextLong(), 36) + ".tmp");
        try {
            writer.write(tmp);
            // on disk before the rename: otherwise a crash can leave the final name on an empty file
            try (var channel = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                channel.force(true);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** Fills bf16 values: uniform in [-range, range], or 1 + uniform for norm weights (xorshift, per chunk seeds). */
    private static void fill(MemorySegment seg, long elements, boolean norm, double range, long seed, Parallel parallel) {
        int chunks = (int) Math.min(1024, Math.max(1, elements / 65536));
        parallel.forEach(chunks, c -> {
            long from = elements * c / chunks, to = elements * (c + 1) / chunks;
            long x = seed ^ (c * 0xBF58476D1CE4E5B9L) | 1;
            for (long i = from; i < to; i++) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
                double u = (x >>> 11) * 0x1.0p-53 * 2 - 1;
                float v = (float) (norm ? 1 + u * range : u * range);
                seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, i * 2, (short) (Float.floatToRawIntBits(v) >>> 16));
            }
        });
    }

    private static void writeConfig(Shape s, Path out) throws IOException {
        ObjectNode c = ModelConfig.JSON.createObjectNode();
        c.putArray("architectures").add(s.experts() > 0 ? "Qwen3MoeForCausalLM" : "Qwen3ForCausalLM");
        c.put("model_type", s.experts() > 0 ? "qwen3_moe" : "qwen3");
        c.put("hidden_size", s.hidden());
        c.put("intermediate_size", s.intermediate());
        c.put("num_hidden_layers", s.layers());
        c.put("num_attention_heads", s.heads());
        c.put("num_key_value_heads", s.kvHeads());
        c.put("head_dim", s.headDim());
        c.put("vocab_size", VOCAB);
        c.put("rms_norm_eps", 1e-6);
        c.put("rope_theta", 1_000_000.0);
        c.putNull("rope_scaling");
        c.put("max_position_embeddings", 40960);
        c.put("tie_word_embeddings", s.tied());
        c.put("torch_dtype", "bfloat16");
        c.put("bos_token_id", 151643);
        c.put("eos_token_id", 151645);
        if (s.experts() > 0) {
            c.put("num_experts", s.experts());
            c.put("num_experts_per_tok", s.expertsPerTok());
            c.put("moe_intermediate_size", s.moeIntermediate());
            c.put("norm_topk_prob", true);
            c.put("decoder_sparse_step", 1);
            c.putArray("mlp_only_layers");
        }
        writeAtomically(out.resolve("generation_config.json"), tmp -> Files.writeString(tmp,
                "{\"do_sample\": true, \"eos_token_id\": [151645, 151643], \"temperature\": 0.6, \"top_k\": 20, \"top_p\": 0.95}",
                StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE));
        // config.json last: a directory that a crash left incomplete does not read as a model
        writeAtomically(out.resolve("config.json"), tmp -> Files.writeString(tmp, c.toPrettyString(), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE));
    }
}
