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

    /**
     * Upper bounds of the fields that size arrays or index them, far above every published model
     * (Qwen3-235B: hidden 4096, 94 layers, 128 experts, vocab 151,936) but low enough that no
     * product of them overflows an int and no bogus value allocates gigabytes before a shape check.
     */
    public static final int MAX_DIM = 1 << 20;
    public static final int MAX_VOCAB = 1 << 24;
    public static final int MAX_LAYERS = 1 << 12;
    public static final int MAX_HEADS = 1 << 12;
    public static final int MAX_EXPERTS = 1 << 14;
    public static final int MAX_POSITIONS = 1 << 26;
    /** config.json and generation_config.json are a few KB; larger ones are not read into memory. */
    static final long MAX_CONFIG_BYTES = 16L << 20;

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
        return fromJson(readJson(configJson, "config"), configJson.toString());
    }

    /** Reads a small JSON file (a config), refusing files larger than {@link #MAX_CONFIG_BYTES}. */
    static JsonNode readJson(Path file, String what) {
        try {
            long size = Files.size(file);
            if (size > MAX_CONFIG_BYTES) {
                throw new ModelFormatException(file + ": " + size + " bytes, more than the " + MAX_CONFIG_BYTES
                        + " bytes a " + what + " file may have");
            }
            JsonNode n = JSON.readTree(Files.readAllBytes(file));
            if (n == null || !n.isObject()) {
                throw new ModelFormatException(file + ": expected a JSON object, found " + (n == null ? "nothing" : n.getNodeType()));
            }
            return n;
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot read " + what + " (" + e.getMessage() + ")", e);
        }
    }

    static ModelConfig fromJson(JsonNode n, String file) {
        var f = new Fields(n, file);
        String type = f.string("model_type", null);
        if (type == null || !(type.equals("qwen3") || type.equals("qwen3_moe"))) {
            throw new ModelFormatException(file + ": model_type is " + (type == null ? "missing" : "'" + type + "'")
                    + ", expected 'qwen3' or 'qwen3_moe'");
        }
        int hidden = f.requiredInt("hidden_size", 1, MAX_DIM);
        int intermediate = f.requiredInt("intermediate_size", 1, MAX_DIM);
        int layers = f.requiredInt("num_hidden_layers", 1, MAX_LAYERS);
        int heads = f.requiredInt("num_attention_heads", 1, MAX_HEADS);
        int kvHeads = f.intValue("num_key_value_heads", heads, 1, MAX_HEADS);
        int headDim = n.hasNonNull("head_dim") ? f.requiredInt("head_dim", 1, MAX_DIM)
                : checkInt(file, "head_dim (absent: hidden_size / num_attention_heads)", hidden / heads, 1, MAX_DIM);
        int vocab = f.requiredInt("vocab_size", 1, MAX_VOCAB);
        float eps = (float) f.doubleValue("rms_norm_eps", 1e-6);
        int maxPos = f.intValue("max_position_embeddings", 40960, 1, MAX_POSITIONS);
        // Prefer rope_parameters (transformers 5), else rope_theta + rope_scaling (published form).
        JsonNode ropeParams = n.path("rope_parameters");
        boolean params = ropeParams.isObject();
        JsonNode scaling = params ? ropeParams : n.path("rope_scaling");
        String scalingName = params ? "rope_parameters" : "rope_scaling";
        if (!scaling.isMissingNode() && !scaling.isNull() && !scaling.isObject()) {
            throw new ModelFormatException(file + ": field '" + scalingName + "' is " + scaling + ", expected an object");
        }
        double theta = params && ropeParams.has("rope_theta")
                ? new Fields(ropeParams, file, "rope_parameters.").doubleValue("rope_theta", 1_000_000.0)
                : f.doubleValue("rope_theta", 1_000_000.0);
        String ropeType = scaling.isObject()
                ? scaling.path("rope_type").asText(scaling.path("type").asText("default")) : "default";
        if (!ropeType.equals("default") && !ropeType.equals("yarn")) {
            throw new ModelFormatException(file + ": rope type '" + ropeType + "' is not supported (expected default or yarn)");
        }
        var s = new Fields(scaling.isObject() ? scaling : JSON.createObjectNode(), file, scalingName + ".");
        var rope = new RopeScaling(ropeType, theta, s.doubleValue("factor", 1.0),
                s.intValue("original_max_position_embeddings", maxPos, 1, MAX_POSITIONS));
        boolean moe = type.equals("qwen3_moe");
        int experts = 0, perToken = 0, moeIntermediate = 0, sparseStep = f.intValue("decoder_sparse_step", 1, 1, MAX_LAYERS);
        String expertsField = n.hasNonNull("num_experts") || !n.hasNonNull("num_local_experts") ? "num_experts" : "num_local_experts";
        if (moe) {
            if (!n.hasNonNull(expertsField)) {
                throw new ModelFormatException(file + ": qwen3_moe config needs num_experts (or num_local_experts) > 0");
            }
            experts = f.requiredInt(expertsField, 1, MAX_EXPERTS);
            perToken = f.requiredInt("num_experts_per_tok", 1, MAX_EXPERTS);
            moeIntermediate = f.requiredInt("moe_intermediate_size", 1, MAX_DIM);
        }
        Set<Integer> mlpOnly = new TreeSet<>(f.intList("mlp_only_layers", 0, layers - 1));
        var config = new ModelConfig(
                type, hidden, intermediate, layers, heads, kvHeads, headDim, vocab, eps, rope, maxPos,
                n.path("tie_word_embeddings").asBoolean(false), experts, perToken, moeIntermediate,
                n.path("norm_topk_prob").asBoolean(true), sparseStep, mlpOnly,
                f.intValue("bos_token_id", -1, -1, vocab - 1), f.intList("eos_token_id", 0, vocab - 1));
        String thetaField = params && ropeParams.has("rope_theta") ? "rope_parameters.rope_theta" : "rope_theta";
        config.checkConsistency(file, field -> switch (field) {
            case "rope_theta" -> thetaField;
            case "rope_factor" -> scalingName + ".factor";
            case "num_experts" -> expertsField;
            default -> field;
        });
        return config;
    }

    /**
     * The checks across fields, for config.json and GGUF alike: {@code field} turns a config.json
     * field name into the name the file uses. Throws a {@link ModelFormatException} naming the
     * file and the fields.
     */
    void checkConsistency(String file, java.util.function.UnaryOperator<String> field) {
        java.util.function.UnaryOperator<String> q = name -> "field '" + field.apply(name) + "'";
        if (numHeads % numKvHeads != 0) {
            throw new ModelFormatException(file + ": " + q.apply("num_attention_heads") + " (" + numHeads
                    + ") is not a multiple of " + q.apply("num_key_value_heads") + " (" + numKvHeads + ")");
        }
        if (headDim % 2 != 0) {
            throw new ModelFormatException(file + ": " + q.apply("head_dim") + " is " + headDim
                    + ", expected an even number (rotary embeddings rotate pairs)");
        }
        if ((long) numHeads * headDim > MAX_DIM) {
            throw new ModelFormatException(file + ": " + q.apply("num_attention_heads") + " x " + q.apply("head_dim")
                    + " = " + (long) numHeads * headDim + ", expected at most " + MAX_DIM);
        }
        if (!(rmsNormEps > 0) || !Float.isFinite(rmsNormEps)) {
            throw new ModelFormatException(file + ": " + q.apply("rms_norm_eps") + " is " + rmsNormEps
                    + ", expected a positive finite number (in float precision)");
        }
        if (!(rope.theta() > 1) || !Double.isFinite(rope.theta())) {
            throw new ModelFormatException(file + ": " + q.apply("rope_theta") + " is " + rope.theta()
                    + ", expected a finite number > 1");
        }
        if (rope.isYarn() && (!(rope.factor() >= 1) || !Double.isFinite(rope.factor()))) {
            throw new ModelFormatException(file + ": " + q.apply("rope_factor") + " is " + rope.factor()
                    + ", expected a finite number >= 1 for yarn");
        }
        if (numExperts > 0 && numExpertsPerTok > numExperts) {
            throw new ModelFormatException(file + ": " + q.apply("num_experts_per_tok") + " (" + numExpertsPerTok
                    + ") exceeds " + q.apply("num_experts") + " (" + numExperts + ")");
        }
        for (int eos : eosTokenIds) {
            if (eos < 0 || eos >= vocabSize) {
                throw new ModelFormatException(file + ": " + q.apply("eos_token_id") + " " + eos + " is outside the vocabulary [0, "
                        + vocabSize + ")");
            }
        }
        if (bosTokenId < -1 || bosTokenId >= vocabSize) {
            throw new ModelFormatException(file + ": " + q.apply("bos_token_id") + " " + bosTokenId
                    + " is outside the vocabulary [0, " + vocabSize + ")");
        }
    }

    /** {@code value} if it lies in [min, max], else a {@link ModelFormatException} naming the file and the field. */
    static int checkInt(String file, String field, long value, long min, long max) {
        if (value < min || value > max) {
            throw new ModelFormatException(file + ": field '" + field + "' is " + value + ", expected an integer in ["
                    + min + ", " + max + "]");
        }
        return (int) value;
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

    /** Reads typed fields, naming the file and the field when one is missing, mistyped or out of range. */
    record Fields(JsonNode n, String file, String prefix) {
        Fields(JsonNode n, String file) {
            this(n, file, "");
        }

        private ModelFormatException wrong(String name, JsonNode v, String expected) {
            return new ModelFormatException(file + ": field '" + prefix + name + "' is "
                    + (v == null ? "missing" : v.toString()) + ", expected " + expected);
        }

        int requiredInt(String name, int min, int max) {
            JsonNode v = n.get(name);
            if (v == null || !v.isIntegralNumber() || !v.canConvertToLong()) {
                throw wrong(name, v, "an integer in [" + min + ", " + max + "]");
            }
            return checkInt(file, prefix + name, v.asLong(), min, max);
        }

        int intValue(String name, int fallback, int min, int max) {
            JsonNode v = n.get(name);
            return v == null || v.isNull() ? fallback : requiredInt(name, min, max);
        }

        double doubleValue(String name, double fallback) {
            JsonNode v = n.get(name);
            if (v == null || v.isNull()) {
                return fallback;
            }
            if (!v.isNumber()) {
                throw wrong(name, v, "a number");
            }
            return v.asDouble();
        }

        /** An integer or a list of integers, each in [min, max]; absent or null is the empty list. */
        List<Integer> intList(String name, int min, int max) {
            JsonNode v = n.get(name);
            if (v == null || v.isNull()) {
                return List.of();
            }
            if (!v.isArray() && !v.isNumber()) {
                throw wrong(name, v, "an integer or a list of integers");
            }
            List<Integer> out = new ArrayList<>();
            for (JsonNode x : v.isArray() ? v : List.of(v)) {
                if (!x.isIntegralNumber() || !x.canConvertToLong() || x.asLong() < min || x.asLong() > max) {
                    throw wrong(name, v, "integers in [" + min + ", " + max + "]");
                }
                out.add(x.asInt());
            }
            return List.copyOf(out);
        }

        String string(String name, String fallback) {
            JsonNode v = n.get(name);
            return v == null || v.isNull() ? fallback : v.asText();
        }
    }
}
