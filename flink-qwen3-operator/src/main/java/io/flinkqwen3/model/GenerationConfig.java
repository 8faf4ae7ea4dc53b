package io.flinkqwen3.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
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
        try {
            JsonNode n = ModelConfig.JSON.readTree(Files.readString(file));
            boolean sample = n.path("do_sample").asBoolean(true);
            return new GenerationConfig(
                    ModelConfig.intList(n.path("eos_token_id")),
                    sample && n.has("temperature") ? (float) n.get("temperature").asDouble() : null,
                    n.has("top_p") ? (float) n.get("top_p").asDouble() : null,
                    n.has("top_k") ? n.get("top_k").asInt() : null,
                    n.has("min_p") ? (float) n.get("min_p").asDouble() : null);
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot parse generation config (" + e.getMessage() + ")", e);
        }
    }
}
