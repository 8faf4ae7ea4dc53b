package io.flinkqwen3.model;

import java.nio.file.Path;
import java.util.Set;

/**
 * A loaded model on disk: its config and its tensors under Hugging Face names
 * ({@code model.layers.0.self_attn.q_proj.weight}), memory-mapped. Closing unmaps the files.
 */
public interface Checkpoint extends AutoCloseable {
    ModelConfig config();

    GenerationConfig generationConfig();

    /** Where the tokenizer comes from: a directory with tokenizer.json, or the checkpoint file itself. */
    Path location();

    /** The tensor, or a {@link ModelFormatException} naming the checkpoint and the tensor. */
    Tensor tensor(String name);

    boolean contains(String name);

    Set<String> tensorNames();

    /** Bytes mapped from disk (or allocated off-heap) for the weights. */
    long mappedBytes();

    @Override
    void close();
}
