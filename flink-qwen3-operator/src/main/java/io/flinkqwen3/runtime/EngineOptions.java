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
 * @param expertShards    shards the experts of each MoE layer are split into, each run by one worker
 *                        per step (0: one per kernel thread; at most {@link Qwen3Model#MAX_EXPERT_SHARDS})
 */
public record EngineOptions(int threads, int maxSequences, int maxBatchTokens, int maxContext, DType quantize, int expertShards) {
    public EngineOptions {
        io.flinkqwen3.tensor.Parallel.checkThreads("threads", threads);
        if (threads < 1 || maxSequences < 1 || maxBatchTokens < 1 || maxContext < 0 || expertShards < 0
                || expertShards > Qwen3Model.MAX_EXPERT_SHARDS) {
            throw new IllegalArgumentException("invalid engine options: threads " + threads + ", max sequences "
                    + maxSequences + ", max batch tokens " + maxBatchTokens + ", max context " + maxContext
                    + ", expert shards " + expertShards);
        }
    }

    public EngineOptions(int threads, int maxSequences, int maxBatchTokens, int maxContext) {
        this(threads, maxSequences, maxBatchTokens, maxContext, null, 0);
    }

    public static EngineOptions defaults() {
        return new EngineOptions(Runtime.getRuntime().availableProcessors(), 32, 512, 0, null, 0);
    }

    public EngineOptions withThreads(int t) {
        return new EngineOptions(t, maxSequences, maxBatchTokens, maxContext, quantize, expertShards);
    }

    public EngineOptions withQuantize(DType q) {
        return new EngineOptions(threads, maxSequences, maxBatchTokens, maxContext, q, expertShards);
    }

    public EngineOptions withExpertShards(int s) {
        return new EngineOptions(threads, maxSequences, maxBatchTokens, maxContext, quantize, s);
    }
}
