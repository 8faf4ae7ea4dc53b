package io.flinkqwen3.runtime;

import io.flinkqwen3.tensor.DType;

/**
 * Engine settings.
 *
 * @param threads         kernel worker threads (default: available processors)
 * @param maxSequences    requests decoded together in one step
 * @param maxBatchTokens  tokens per forward pass; long prompts are prefilled in chunks of this size
 * @param maxContext      cap on positions per sequence (prompt + output); 0 = the model's maximum
 * @param quantize        convert the weights to this type at load time (Q8_0 or Q4_0), or null
 */
public record EngineOptions(int threads, int maxSequences, int maxBatchTokens, int maxContext, DType quantize) {
    public EngineOptions {
        if (threads < 1 || maxSequences < 1 || maxBatchTokens < 1 || maxContext < 0) {
            throw new IllegalArgumentException("invalid engine options: threads " + threads + ", max sequences "
                    + maxSequences + ", max batch tokens " + maxBatchTokens + ", max context " + maxContext);
        }
    }

    public EngineOptions(int threads, int maxSequences, int maxBatchTokens, int maxContext) {
        this(threads, maxSequences, maxBatchTokens, maxContext, null);
    }

    public static EngineOptions defaults() {
        return new EngineOptions(Runtime.getRuntime().availableProcessors(), 32, 512, 0, null);
    }

    public EngineOptions withThreads(int t) {
        return new EngineOptions(t, maxSequences, maxBatchTokens, maxContext, quantize);
    }

    public EngineOptions withQuantize(DType q) {
        return new EngineOptions(threads, maxSequences, maxBatchTokens, maxContext, q);
    }
}
