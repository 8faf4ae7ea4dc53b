package io.flinkqwen3.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The sampling defaults and stop ids of {@code generation_config.json}, read as transformers reads
 * them: {@code do_sample} false (transformers' default when the file leaves it out) means greedy
 * decoding whatever else the file says; otherwise temperature, top_p, top_k and min_p are the
 * defaults of every request that sets none, in both modes. Absent sampling fields stay null so that
 * callers fall back to Qwen's recommendation for the mode. doSample is null when there is no
 * generation_config.json at all (a GGUF file, a bare directory): then Qwen's recommendations apply.
 */
public record GenerationConfig(List<Integer> eosTokenIds, Boolean doSample, Float temperature, Float topP, Integer topK,
                               Float minP) {

    public static final GenerationConfig EMPTY = new GenerationConfig(List.of(), null, null, null, null, null);

    public static GenerationConfig read(Path file) {
        if (!Files.exists(file)) {
            return EMPTY;
        }
        JsonNode n = ModelConfig.readJson(file, "generation config");
        var f = new ModelConfig.Fields(n, file.toString());
        JsonNode doSample = n.path("do_sample");
        if (!doSample.isMissingNode() && !doSample.isNull() && !doSample.isBoolean()) {
            throw new ModelFormatException(file + ": field 'do_sample' is " + doSample + ", expected true or false");
        }
        return new GenerationConfig(
                f.intList("eos_token_id", 0, ModelConfig.MAX_VOCAB - 1),
                doSample.isBoolean() && doSample.booleanValue(), // transformers' default: False
                n.hasNonNull("temperature") ? probability(f, "temperature", 0, Double.MAX_VALUE) : null,
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
