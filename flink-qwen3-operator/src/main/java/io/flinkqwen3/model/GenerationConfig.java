package io.flinkqwen3.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The sampling defaults and stop ids of {@code generation_config.json}. Absent fields stay null so
 * that callers can fall back to Qwen's recommendations for the chosen mode.
 */
public record GenerationConfig(List<Integer> eosTokenIds, Float temperature, Float topP, Integer topK, Float minP) {

    public static final GenerationConfig EMPTY = new GenerationConfig(List.of(), null, null, null, null);

    public static GenerationConfig read(Path file) {
        if (!Files.exists(file)) {
            return EMPTY;
        }
        JsonNode n = ModelConfig.readJson(file, "generation config");
        var f = new ModelConfig.Fields(n, file.toString());
        boolean sample = n.path("do_sample").asBoolean(true);
        return new GenerationConfig(
                f.intList("eos_token_id", 0, ModelConfig.MAX_VOCAB - 1),
                sample && n.hasNonNull("temperature") ? probability(f, "temperature", 0, Double.MAX_VALUE) : null,
                n.hasNonNull("top_p") ? probability(f, "top_p", Double.MIN_VALUE, 1) : null,
                n.hasNonNull("top_k") ? (Integer) f.requiredInt("top_k", 0, Integer.MAX_VALUE) : null,
                n.hasNonNull("min_p") ? probability(f, "min_p", 0, 1) : null);
    }

    /** A finite number in [min, max] as a float, or a {@link ModelFormatException} naming the file and the field. */
    private static Float probability(ModelConfig.Fields f, String name, double min, double max) {
        double v = f.doubleValue(name, Double.NaN);
        if (!(v >= min && v <= max) || !Double.isFinite(v)) {
            throw new ModelFormatException(f.file() + ": field '" + name + "' is " + v + ", expected a finite number in ["
                    + (min == Double.MIN_VALUE ? "0 (exclusive)" : min) + ", " + (max == Double.MAX_VALUE ? "inf)" : max + "]"));
        }
        return (float) v;
    }
}
