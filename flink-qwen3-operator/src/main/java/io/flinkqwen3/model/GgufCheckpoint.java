package io.flinkqwen3.model;

import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A GGUF model of architecture {@code qwen3} or {@code qwen3moe}, seen under Hugging Face tensor
 * names so that the model code is the same for both formats. Stacked expert tensors
 * ({@code blk.N.ffn_gate_exps}, [E, I, H]) are served one expert slice at a time.
 */
public final class GgufCheckpoint implements Checkpoint {
    private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)");
    private static final Pattern EXPERT = Pattern.compile("mlp\\.experts\\.(\\d+)\\.(gate|up|down)_proj\\.weight");
    private static final Map<String, String> LAYER_NAMES = Map.ofEntries(
            Map.entry("input_layernorm.weight", "attn_norm.weight"),
            Map.entry("self_attn.q_proj.weight", "attn_q.weight"),
            Map.entry("self_attn.k_proj.weight", "attn_k.weight"),
            Map.entry("self_attn.v_proj.weight", "attn_v.weight"),
            Map.entry("self_attn.o_proj.weight", "attn_output.weight"),
            Map.entry("self_attn.q_norm.weight", "attn_q_norm.weight"),
            Map.entry("self_attn.k_norm.weight", "attn_k_norm.weight"),
            Map.entry("post_attention_layernorm.weight", "ffn_norm.weight"),
            Map.entry("mlp.gate_proj.weight", "ffn_gate.weight"),
            Map.entry("mlp.up_proj.weight", "ffn_up.weight"),
            Map.entry("mlp.down_proj.weight", "ffn_down.weight"),
            Map.entry("mlp.gate.weight", "ffn_gate_inp.weight"));

    private final GgufFile gguf;
    private final ModelConfig config;
    private final GenerationConfig generationConfig;

    private GgufCheckpoint(GgufFile gguf) {
        this.gguf = gguf;
        this.config = configFrom(gguf);
        Object eos = gguf.metadata().get("tokenizer.ggml.eos_token_id");
        this.generationConfig = new GenerationConfig(eos instanceof Number n ? List.of(n.intValue()) : List.of(), null,
                null, null, null, null);
    }

    public static GgufCheckpoint open(Path file) {
        GgufFile gguf = GgufFile.open(file);
        try {
            return new GgufCheckpoint(gguf);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    /** config.json field names to the GGUF metadata keys that carry them (for error messages). */
    private static final Map<String, String> GGUF_KEYS = Map.ofEntries(
            Map.entry("hidden_size", "embedding_length"),
            Map.entry("num_attention_heads", "attention.head_count"),
            Map.entry("num_key_value_heads", "attention.head_count_kv"),
            Map.entry("head_dim", "attention.key_length"),
            Map.entry("rms_norm_eps", "attention.layer_norm_rms_epsilon"),
            Map.entry("rope_theta", "rope.freq_base"),
            Map.entry("rope_factor", "rope.scaling.factor"),
            Map.entry("num_experts", "expert_count"),
            Map.entry("num_experts_per_tok", "expert_used_count"));

    private static ModelConfig configFrom(GgufFile gguf) {
        Map<String, Object> m = gguf.metadata();
        String file = gguf.path().toString();
        Object archValue = m.get("general.architecture");
        if (!"qwen3".equals(archValue) && !"qwen3moe".equals(archValue)) {
            throw new ModelFormatException(file + ": general.architecture is '" + archValue + "', expected 'qwen3' or 'qwen3moe'");
        }
        String a = (String) archValue;
        var keys = new Object() {
            /** An integer key in [min, max]; absent: the fallback (null: required). */
            int integer(String key, Long fallback, long min, long max) {
                Object v = key.startsWith("tokenizer.") ? m.get(key) : m.get(a + "." + key);
                String name = key.startsWith("tokenizer.") ? key : a + "." + key;
                if (v == null && fallback != null) {
                    return ModelConfig.checkInt(file, name + " (absent, derived)", fallback, min, max);
                }
                if (!(v instanceof Number n) || v instanceof Float || v instanceof Double) {
                    throw new ModelFormatException(file + ": metadata key '" + name + "' is "
                            + (v == null ? "missing" : v + " (" + v.getClass().getSimpleName() + ")") + ", expected an integer");
                }
                return ModelConfig.checkInt(file, name, n.longValue(), min, max);
            }

            double number(String key, double fallback) {
                Object v = m.get(a + "." + key);
                if (v == null) {
                    return fallback;
                }
                if (!(v instanceof Number n)) {
                    throw new ModelFormatException(file + ": metadata key '" + a + "." + key + "' is " + v + ", expected a number");
                }
                return n.doubleValue();
            }
        };
        int hidden = keys.integer("embedding_length", null, 1, ModelConfig.MAX_DIM);
        int heads = keys.integer("attention.head_count", null, 1, ModelConfig.MAX_HEADS);
        int headDim = keys.integer("attention.key_length", (long) hidden / heads, 1, ModelConfig.MAX_DIM);
        int maxPos = keys.integer("context_length", 40960L, 1, ModelConfig.MAX_POSITIONS);
        String scaling = m.get(a + ".rope.scaling.type") instanceof String s ? s : "default";
        var rope = new RopeScaling(scaling.equals("yarn") ? "yarn" : "default", keys.number("rope.freq_base", 1_000_000.0),
                keys.number("rope.scaling.factor", 1.0),
                keys.integer("rope.scaling.original_context_length", (long) maxPos, 1, ModelConfig.MAX_POSITIONS));
        String vocabSource = vocabSource(m, a);
        int vocab;
        if (vocabSource.equals(VOCAB_FROM_EMBEDDING)) {
            vocab = embeddingRows(gguf);
        } else if (vocabSource.equals(VOCAB_FROM_TOKENS)) {
            if (!(m.get(VOCAB_FROM_TOKENS) instanceof List<?> tokens)) {
                throw new ModelFormatException(file + ": metadata 'tokenizer.ggml.tokens' is not an array");
            }
            vocab = ModelConfig.checkInt(file, "tokenizer.ggml.tokens (its length, the vocabulary)", tokens.size(), 1, ModelConfig.MAX_VOCAB);
        } else {
            vocab = keys.integer("vocab_size", null, 1, ModelConfig.MAX_VOCAB);
        }
        boolean moe = a.equals("qwen3moe");
        int ff = keys.integer("feed_forward_length", null, 1, ModelConfig.MAX_DIM);
        int experts = moe ? keys.integer("expert_count", null, 1, ModelConfig.MAX_EXPERTS) : 0;
        int used = moe ? keys.integer("expert_used_count", null, 1, ModelConfig.MAX_EXPERTS) : 0;
        int expertFf = moe ? keys.integer("expert_feed_forward_length", (long) ff / used, 1, ModelConfig.MAX_DIM) : 0;
        int eos = keys.integer("tokenizer.ggml.eos_token_id", -1L, -1, vocab - 1);
        int bos = keys.integer("tokenizer.ggml.bos_token_id", -1L, -1, vocab - 1);
        var config = new ModelConfig(moe ? "qwen3_moe" : "qwen3", hidden, ff, keys.integer("block_count", null, 1, ModelConfig.MAX_LAYERS),
                heads, keys.integer("attention.head_count_kv", (long) heads, 1, ModelConfig.MAX_HEADS), headDim, vocab,
                (float) keys.number("attention.layer_norm_rms_epsilon", 1e-6), rope, maxPos,
                !gguf.tensors().containsKey("output.weight"), experts, used, expertFf,
                !(m.get(a + ".expert_weights_norm") instanceof Boolean b) || b, 1, Set.of(),
                bos, eos >= 0 ? List.of(eos) : List.of());
        config.checkConsistency(file, field -> field.startsWith("eos_") || field.startsWith("bos_")
                ? "tokenizer.ggml." + field : a + "." + GGUF_KEYS.getOrDefault(field, field));
        return config;
    }

    private static final String VOCAB_FROM_TOKENS = "tokenizer.ggml.tokens", VOCAB_FROM_EMBEDDING = "token_embd.weight";

    /**
     * Where the vocabulary size comes from, as llama.cpp takes it: the metadata key
     * {@code <arch>.vocab_size}, else the length of tokenizer.ggml.tokens. Only a file with neither
     * (no vocabulary to check against) takes it from token_embd.weight's rows; otherwise the rows are
     * checked against it like every other shape.
     */
    private static String vocabSource(Map<String, Object> m, String arch) {
        return m.containsKey(arch + ".vocab_size") ? arch + ".vocab_size"
                : m.containsKey(VOCAB_FROM_TOKENS) ? VOCAB_FROM_TOKENS : VOCAB_FROM_EMBEDDING;
    }

    /** Where the vocabulary size was read from, for error messages: "qwen3.vocab_size", "length of tokenizer.ggml.tokens", ... */
    public String vocabSource() {
        String source = vocabSource(gguf.metadata(), (String) gguf.metadata().get("general.architecture"));
        return switch (source) {
            case VOCAB_FROM_TOKENS -> "length of " + source;
            case VOCAB_FROM_EMBEDDING -> "rows of " + source;
            default -> source;
        };
    }

    private static int embeddingRows(GgufFile gguf) {
        String file = gguf.path().toString();
        var embed = gguf.tensors().get(VOCAB_FROM_EMBEDDING);
        if (embed == null) {
            throw new ModelFormatException(file + ": tensor 'token_embd.weight' missing (and no vocab_size or tokenizer.ggml.tokens"
                    + " in the metadata to take the vocabulary from)");
        }
        if (embed.dims().length != 2) {
            throw new ModelFormatException(file + ": tensor 'token_embd.weight' has dimensions " + java.util.Arrays.toString(embed.dims())
                    + ", expected [hidden, vocab]");
        }
        return ModelConfig.checkInt(file, "token_embd.weight rows (the vocabulary)", embed.dims()[1], 1, ModelConfig.MAX_VOCAB);
    }

    /** The Jinja chat template in the metadata (tokenizer.chat_template), or null. */
    public String chatTemplate() {
        return gguf.metadata().get("tokenizer.chat_template") instanceof String template ? template : null;
    }

    /** The tokenizer stored in the file's tokenizer.ggml.* metadata (gpt2 / qwen2 pre-tokenizer). */
    public Qwen3Tokenizer tokenizer() {
        Map<String, Object> m = gguf.metadata();
        if (!"gpt2".equals(m.get("tokenizer.ggml.model")) || !(m.get("tokenizer.ggml.tokens") instanceof List<?> tokens)) {
            throw new ModelFormatException(gguf.path() + ": no byte-level BPE tokenizer (tokenizer.ggml.model 'gpt2') in the metadata");
        }
        Object typesValue = m.getOrDefault("tokenizer.ggml.token_type", List.of());
        if (!(typesValue instanceof List<?> types)) {
            throw new ModelFormatException(gguf.path() + ": metadata 'tokenizer.ggml.token_type' is not an array");
        }
        Map<String, Integer> vocab = new HashMap<>(tokens.size() * 2);
        List<Qwen3Tokenizer.AddedToken> added = new ArrayList<>();
        for (int id = 0; id < tokens.size(); id++) {
            Object typeValue = id < types.size() ? types.get(id) : 1;
            if (!(tokens.get(id) instanceof String token)) {
                throw new ModelFormatException(gguf.path() + ": metadata 'tokenizer.ggml.tokens'[" + id + "] is not a string");
            }
            if (!(typeValue instanceof Number type) || typeValue instanceof Float || typeValue instanceof Double) {
                throw new ModelFormatException(gguf.path() + ": metadata 'tokenizer.ggml.token_type'[" + id + "] is " + typeValue
                        + ", expected an integer token type");
            }
            switch (type.intValue()) {
                case 3, 4 -> added.add(new Qwen3Tokenizer.AddedToken(id, token, type.intValue() == 3)); // control: special
                case 5 -> { } // unused padding rows of the embedding
                default -> vocab.put(token, id);
            }
        }
        List<String[]> merges = new ArrayList<>();
        Object mergesValue = m.getOrDefault("tokenizer.ggml.merges", List.of());
        if (!(mergesValue instanceof List<?> list)) {
            throw new ModelFormatException(gguf.path() + ": metadata 'tokenizer.ggml.merges' is not an array");
        }
        for (int i = 0; i < list.size(); i++) {
            if (!(list.get(i) instanceof String merge) || merge.split(" ", -1).length != 2) {
                throw new ModelFormatException(gguf.path() + ": metadata 'tokenizer.ggml.merges'[" + i + "] is " + list.get(i)
                        + ", expected \"left right\"");
            }
            merges.add(merge.split(" ", -1));
        }
        try {
            return new Qwen3Tokenizer(vocab, merges, added);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(gguf.path() + ": tokenizer.ggml.* metadata: " + e.getMessage(), e);
        }
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public GenerationConfig generationConfig() {
        return generationConfig;
    }

    @Override
    public Path location() {
        return gguf.path();
    }

    @Override
    public Tensor tensor(String name) {
        Tensor t = lookup(name);
        if (t == null) {
            throw new ModelFormatException(gguf.path() + ": tensor for '" + name + "' (" + ggufName(name) + ") missing from the file");
        }
        return t;
    }

    private Tensor lookup(String name) {
        Matcher layer = LAYER.matcher(name);
        if (layer.matches()) {
            Matcher expert = EXPERT.matcher(layer.group(2));
            if (expert.matches()) {
                var stacked = gguf.tensors().get("blk." + layer.group(1) + ".ffn_" + expert.group(2) + "_exps.weight");
                return stacked == null ? null : expertSlice(stacked, Integer.parseInt(expert.group(1)), name);
            }
        }
        var info = gguf.tensors().get(ggufName(name));
        if (info == null) {
            return null;
        }
        long[] shape = new long[info.dims().length];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = info.dims()[shape.length - 1 - i]; // ggml lists the fastest dimension first
        }
        return new Tensor(name, gguf.path().getFileName() + ":" + info.name(), info.type(), shape, info.data());
    }

    private Tensor expertSlice(GgufFile.TensorInfo stacked, int expert, String name) {
        if (stacked.dims().length != 3) {
            throw new ModelFormatException(gguf.path() + ": tensor '" + stacked.name() + "' has dimensions "
                    + java.util.Arrays.toString(stacked.dims()) + ", expected [columns, rows, experts]");
        }
        long cols = stacked.dims()[0], rows = stacked.dims()[1], experts = stacked.dims()[2];
        if (expert >= experts) {
            return null;
        }
        long bytes = stacked.type().byteSize(rows * cols);
        return new Tensor(name, gguf.path().getFileName() + ":" + stacked.name() + "[" + expert + "]", stacked.type(),
                new long[] {rows, cols}, stacked.data().asSlice(expert * bytes, bytes));
    }

    static String ggufName(String hfName) {
        return switch (hfName) {
            case "model.embed_tokens.weight" -> "token_embd.weight";
            case "model.norm.weight" -> "output_norm.weight";
            case "lm_head.weight" -> "output.weight";
            default -> {
                Matcher layer = LAYER.matcher(hfName);
                String mapped = layer.matches() ? LAYER_NAMES.get(layer.group(2)) : null;
                yield mapped == null ? hfName : "blk." + layer.group(1) + "." + mapped;
            }
        };
    }

    @Override
    public boolean contains(String name) {
        return lookup(name) != null;
    }

    @Override
    public Set<String> tensorNames() {
        return new TreeSet<>(new LinkedHashSet<>(gguf.tensors().keySet()));
    }

    @Override
    public long mappedBytes() {
        return gguf.byteSize();
    }

    @Override
    public void close() {
        gguf.close();
    }
}
