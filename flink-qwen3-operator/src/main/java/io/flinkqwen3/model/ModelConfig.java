package io.flinkqwen3.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Everything in a Qwen3 / Qwen3-MoE config that changes the math. Read from {@code config.json} in
 * both forms found in the wild (published: rope_theta, rope_scaling, num_experts, torch_dtype;
 * transformers 5: rope_parameters, num_local_experts, dtype) or from GGUF metadata.
 */
public record ModelConfig(
        String modelType,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int vocabSize,
        float rmsNormEps,
        RopeScaling rope,
        int maxPositionEmbeddings,
        boolean tieWordEmbeddings,
        int numExperts,
        int numExpertsPerTok,
        int moeIntermediateSize,
        boolean normTopkProb,
        int decoderSparseStep,
        Set<Integer> mlpOnlyLayers,
        int bosTokenId,
        List<Integer> eosTokenIds) {

    public static final ObjectMapper JSON = new ObjectMapper();

    public boolean isMoe() {
        return numExperts > 0;
    }

    /** transformers' rule: sparse if not in mlp_only_layers and (idx+1) % decoder_sparse_step == 0. */
    public boolean isMoeLayer(int layer) {
        return isMoe() && !mlpOnlyLayers.contains(layer) && (layer + 1) % decoderSparseStep == 0;
    }

    public int qDim() {
        return numHeads * headDim;
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }

    public static ModelConfig read(Path configJson) {
        JsonNode n;
        try {
            n = JSON.readTree(Files.readString(configJson));
        } catch (IOException e) {
            throw new ModelFormatException(configJson + ": cannot read config (" + e.getMessage() + ")", e);
        }
        return fromJson(n, configJson.toString());
    }

    static ModelConfig fromJson(JsonNode n, String file) {
        var f = new Fields(n, file);
        String type = f.string("model_type", null);
        if (type == null || !(type.equals("qwen3") || type.equals("qwen3_moe"))) {
            throw new ModelFormatException(file + ": model_type is " + (type == null ? "missing" : "'" + type + "'")
                    + ", expected 'qwen3' or 'qwen3_moe'");
        }
        int hidden = f.requiredInt("hidden_size");
        int heads = f.requiredInt("num_attention_heads");
        // Prefer rope_parameters (transformers 5), else rope_theta + rope_scaling (published form).
        JsonNode ropeParams = n.path("rope_parameters");
        JsonNode scaling = ropeParams.isObject() ? ropeParams : n.path("rope_scaling");
        double theta = ropeParams.isObject() && ropeParams.has("rope_theta")
                ? ropeParams.get("rope_theta").asDouble() : f.doubleValue("rope_theta", 1_000_000.0);
        String ropeType = scaling.isObject()
                ? scaling.path("rope_type").asText(scaling.path("type").asText("default")) : "default";
        if (!ropeType.equals("default") && !ropeType.equals("yarn")) {
            throw new ModelFormatException(file + ": rope type '" + ropeType + "' is not supported (expected default or yarn)");
        }
        int maxPos = f.intValue("max_position_embeddings", 40960);
        var rope = new RopeScaling(ropeType, theta, scaling.path("factor").asDouble(1.0),
                scaling.path("original_max_position_embeddings").asInt(maxPos));
        boolean moe = type.equals("qwen3_moe");
        int experts = moe ? f.intValue("num_experts", f.intValue("num_local_experts", 0)) : 0;
        if (moe && experts <= 0) {
            throw new ModelFormatException(file + ": qwen3_moe config needs num_experts (or num_local_experts) > 0");
        }
        Set<Integer> mlpOnly = new TreeSet<>();
        n.path("mlp_only_layers").forEach(x -> mlpOnly.add(x.asInt()));
        return new ModelConfig(
                type, hidden, f.requiredInt("intermediate_size"), f.requiredInt("num_hidden_layers"), heads,
                f.intValue("num_key_value_heads", heads), f.intValue("head_dim", hidden / heads),
                f.requiredInt("vocab_size"), (float) f.doubleValue("rms_norm_eps", 1e-6), rope, maxPos,
                n.path("tie_word_embeddings").asBoolean(false), experts,
                moe ? f.requiredInt("num_experts_per_tok") : 0, moe ? f.requiredInt("moe_intermediate_size") : 0,
                n.path("norm_topk_prob").asBoolean(true), f.intValue("decoder_sparse_step", 1), mlpOnly,
                f.intValue("bos_token_id", -1), intList(n.path("eos_token_id")));
    }

    static List<Integer> intList(JsonNode node) {
        List<Integer> out = new ArrayList<>();
        if (node.isArray()) {
            node.forEach(x -> out.add(x.asInt()));
        } else if (node.isNumber()) {
            out.add(node.asInt());
        }
        return List.copyOf(out);
    }

    /** Reads typed fields, naming the file and the field when one is missing or mistyped. */
    private record Fields(JsonNode n, String file) {
        int requiredInt(String name) {
            JsonNode v = n.get(name);
            if (v == null || !v.canConvertToInt()) {
                throw new ModelFormatException(file + ": field '" + name + "' is "
                        + (v == null ? "missing" : "not an integer (" + v + ")") + ", expected an integer");
            }
            return v.asInt();
        }

        int intValue(String name, int fallback) {
            JsonNode v = n.get(name);
            return v == null || v.isNull() ? fallback : requiredInt(name);
        }

        double doubleValue(String name, double fallback) {
            JsonNode v = n.get(name);
            if (v == null || v.isNull()) {
                return fallback;
            }
            if (!v.isNumber()) {
                throw new ModelFormatException(file + ": field '" + name + "' is " + v + ", expected a number");
            }
            return v.asDouble();
        }

        String string(String name, String fallback) {
            JsonNode v = n.get(name);
            return v == null || v.isNull() ? fallback : v.asText();
        }
    }
}
