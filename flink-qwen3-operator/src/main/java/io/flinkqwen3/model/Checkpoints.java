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
        throw new ModelFormatException(path + ": not a model directory (config.json + *.safetensors)");
    }

    /** The tokenizer that ships with the checkpoint, or null when there is none (token ids only). */
    public static Qwen3Tokenizer tokenizer(Checkpoint checkpoint) {
        Path json = checkpoint.location().resolve("tokenizer.json");
        return Files.isRegularFile(json) ? Qwen3Tokenizer.load(json) : null;
    }
}
