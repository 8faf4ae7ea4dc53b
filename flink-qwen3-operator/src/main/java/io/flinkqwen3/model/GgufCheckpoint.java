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
        this.generationConfig = new GenerationConfig(eos instanceof Number n ? List.of(n.intValue()) : List.of(),
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

    private static ModelConfig configFrom(GgufFile gguf) {
        Map<String, Object> m = gguf.metadata();
        String file = gguf.path().toString();
        Object archValue = m.get("general.architecture");
        if (!"qwen3".equals(archValue) && !"qwen3moe".equals(archValue)) {
            throw new ModelFormatException(file + ": general.architecture is '" + archValue + "', expected 'qwen3' or 'qwen3moe'");
        }
        String a = (String) archValue;
        var keys = new Object() {
            long required(String key) {
                if (!(m.get(a + "." + key) instanceof Number n)) {
                    throw new ModelFormatException(file + ": metadata key '" + a + "." + key + "' missing or not a number");
                }
                return n.longValue();
            }

            double number(String key, double fallback) {
                return m.get(a + "." + key) instanceof Number n ? n.doubleValue() : fallback;
            }
        };
        int hidden = (int) keys.required("embedding_length");
        int heads = (int) keys.required("attention.head_count");
        int headDim = (int) keys.number("attention.key_length", hidden / (double) heads);
        int maxPos = (int) keys.number("context_length", 40960);
        String scaling = m.get(a + ".rope.scaling.type") instanceof String s ? s : "default";
        var rope = new RopeScaling(scaling.equals("yarn") ? "yarn" : "default", keys.number("rope.freq_base", 1_000_000.0),
                keys.number("rope.scaling.factor", 1.0), (int) keys.number("rope.scaling.original_context_length", maxPos));
        var embed = gguf.tensors().get("token_embd.weight");
        if (embed == null) {
            throw new ModelFormatException(file + ": tensor 'token_embd.weight' missing");
        }
        boolean moe = a.equals("qwen3moe");
        int ff = (int) keys.required("feed_forward_length");
        int used = moe ? (int) keys.required("expert_used_count") : 0;
        Object eos = m.get("tokenizer.ggml.eos_token_id");
        Object bos = m.get("tokenizer.ggml.bos_token_id");
        return new ModelConfig(moe ? "qwen3_moe" : "qwen3", hidden, ff, (int) keys.required("block_count"), heads,
                (int) keys.number("attention.head_count_kv", heads), headDim, (int) embed.dims()[1],
                (float) keys.number("attention.layer_norm_rms_epsilon", 1e-6), rope, maxPos,
                !gguf.tensors().containsKey("output.weight"),
                moe ? (int) keys.required("expert_count") : 0, used,
                moe ? (int) keys.number("expert_feed_forward_length", ff / (double) used) : 0,
                !(m.get(a + ".expert_weights_norm") instanceof Boolean b) || b, 1, Set.of(),
                bos instanceof Number n ? n.intValue() : -1, eos instanceof Number n ? List.of(n.intValue()) : List.of());
    }

    /** The tokenizer stored in the file's tokenizer.ggml.* metadata (gpt2 / qwen2 pre-tokenizer). */
    public Qwen3Tokenizer tokenizer() {
        Map<String, Object> m = gguf.metadata();
        if (!"gpt2".equals(m.get("tokenizer.ggml.model")) || !(m.get("tokenizer.ggml.tokens") instanceof List<?> tokens)) {
            throw new ModelFormatException(gguf.path() + ": no byte-level BPE tokenizer (tokenizer.ggml.model 'gpt2') in the metadata");
        }
        List<?> types = m.get("tokenizer.ggml.token_type") instanceof List<?> t ? t : List.of();
        Map<String, Integer> vocab = new HashMap<>(tokens.size() * 2);
        List<Qwen3Tokenizer.AddedToken> added = new ArrayList<>();
        for (int id = 0; id < tokens.size(); id++) {
            int type = id < types.size() ? ((Number) types.get(id)).intValue() : 1;
            String token = (String) tokens.get(id);
            switch (type) {
                case 3, 4 -> added.add(new Qwen3Tokenizer.AddedToken(id, token, type == 3)); // control: special
                case 5 -> { } // unused padding rows of the embedding
                default -> vocab.put(token, id);
            }
        }
        List<String[]> merges = new ArrayList<>();
        if (m.get("tokenizer.ggml.merges") instanceof List<?> list) {
            list.forEach(x -> merges.add(((String) x).split(" ", 2)));
        }
        return new Qwen3Tokenizer(vocab, merges, added);
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
