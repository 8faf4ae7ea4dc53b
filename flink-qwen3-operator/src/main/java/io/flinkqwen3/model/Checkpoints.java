package io.flinkqwen3.model;

import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;

/** Opens the checkpoint format found at a local path. */
public final class Checkpoints {
    private Checkpoints() {}

    public static Checkpoint open(Path path) {
        if (Files.isDirectory(path)) {
            return SafetensorsCheckpoint.open(path);
        }
        if (path.getFileName().toString().endsWith(".gguf")) {
            return GgufCheckpoint.open(path);
        }
        throw new ModelFormatException(path + ": neither a model directory (config.json + *.safetensors) nor a .gguf file");
    }

    /**
     * The tokenizer that ships with the checkpoint, or null when there is none (token ids only).
     * Where model and tokenizer meet: a tokenizer with ids the model has no embedding row for is
     * refused here, at load, rather than failing every request that produces such an id.
     */
    public static Qwen3Tokenizer tokenizer(Checkpoint checkpoint) {
        Qwen3Tokenizer tokenizer = switch (checkpoint) {
            case QuantizedCheckpoint quantized -> tokenizer(quantized.source());
            case GgufCheckpoint gguf -> gguf.tokenizer();
            default -> tokenizerJson(checkpoint.location());
        };
        int vocab = checkpoint.config().vocabSize();
        if (tokenizer != null && tokenizer.vocabSize() > vocab) {
            boolean gguf = checkpoint.location().getFileName().toString().endsWith(".gguf");
            throw new ModelFormatException((gguf ? checkpoint.location() : checkpoint.location().resolve("tokenizer.json"))
                    + ": the tokenizer has ids up to " + (tokenizer.vocabSize() - 1) + " but the model's vocabulary ("
                    + vocabSource(checkpoint) + ") is " + vocab + ": the tokenizer does not belong to this model");
        }
        return tokenizer;
    }

    private static String vocabSource(Checkpoint checkpoint) {
        return switch (checkpoint) {
            case QuantizedCheckpoint quantized -> vocabSource(quantized.source());
            case GgufCheckpoint gguf -> gguf.vocabSource();
            default -> "vocab_size in config.json";
        };
    }

    /** The tokenizer at a local model location (directory or .gguf) without mapping the weights, or null. */
    public static Qwen3Tokenizer tokenizer(Path location) {
        if (Files.isRegularFile(location) && location.getFileName().toString().endsWith(".gguf")) {
            try (var gguf = GgufCheckpoint.open(location)) {
                return gguf.tokenizer();
            }
        }
        if (!Files.isDirectory(location)) {
            throw new ModelFormatException(location + ": neither a model directory nor a .gguf file");
        }
        return tokenizerJson(location);
    }

    /**
     * The checkpoint's Jinja chat template (tokenizer_config.json's chat_template, or the GGUF's
     * tokenizer.chat_template), or null when it ships none. Only read to tell template variants apart
     * ({@link io.flinkqwen3.tokenizer.ChatTemplate#opensThinkBlock}); rendering is done in Java.
     */
    public static String chatTemplate(Checkpoint checkpoint) {
        return switch (checkpoint) {
            case QuantizedCheckpoint quantized -> chatTemplate(quantized.source());
            case GgufCheckpoint gguf -> gguf.chatTemplate();
            default -> tokenizerConfigTemplate(checkpoint.location());
        };
    }

    /**
     * As {@link #chatTemplate(Checkpoint)} for a model directory or .gguf file, without opening its
     * weights; ModelFormatException for a path that is neither.
     */
    public static String chatTemplate(Path location) {
        if (Files.isRegularFile(location) && location.getFileName().toString().endsWith(".gguf")) {
            try (var gguf = GgufCheckpoint.open(location)) {
                return gguf.chatTemplate();
            }
        }
        if (!Files.isDirectory(location)) {
            throw new ModelFormatException(location + ": neither a model directory nor a .gguf file");
        }
        return tokenizerConfigTemplate(location);
    }

    private static String tokenizerConfigTemplate(Path dir) {
        Path config = dir.resolve("tokenizer_config.json");
        if (!Files.isRegularFile(config)) {
            return null;
        }
        try {
            var template = ModelConfig.JSON.readTree(config.toFile()).get("chat_template");
            return template != null && template.isTextual() ? template.asText() : null;
        } catch (java.io.IOException e) {
            throw new ModelFormatException(config + ": not valid JSON: " + e.getMessage(), e);
        }
    }

    private static Qwen3Tokenizer tokenizerJson(Path dir) {
        Path json = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(json)) {
            return null;
        }
        try {
            return Qwen3Tokenizer.load(json);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(e.getMessage(), e); // the message names the file and the field
        }
    }
}
