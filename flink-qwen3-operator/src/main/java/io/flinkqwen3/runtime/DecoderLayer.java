package io.flinkqwen3.runtime;

import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Parallel;

/**
 * One transformer block of HF modeling_qwen3.py's Qwen3DecoderLayer: RMSNorm then self-attention,
 * added to the residual stream; RMSNorm then the feed-forward block, added again.
 *
 * @param inputNorm [hidden] ({@code input_layernorm.weight})
 * @param postAttentionNorm [hidden] ({@code post_attention_layernorm.weight})
 * @param mlp a dense {@link Mlp}, or a {@link SparseMoeBlock} in the MoE layers of qwen3_moe
 */
record DecoderLayer(float[] inputNorm, Attention selfAttn, float[] postAttentionNorm, FeedForward mlp, float eps) {
    /** Binds the weights of {@code model.layers.<layer>.}; an MoE layer's experts split into {@code expertShards} shards. */
    static DecoderLayer bind(WeightBinder w, int layer, ModelConfig config, int expertShards, Parallel parallel) {
        String p = "model.layers." + layer + ".";
        int h = config.hiddenSize();
        // bound in checkpoint order, so a checkpoint missing a layer reports its first tensor (q_proj)
        var selfAttn = Attention.bind(w, p + "self_attn.", layer, config, parallel);
        FeedForward mlp = config.isMoeLayer(layer)
                ? SparseMoeBlock.bind(w, p + "mlp.", layer, config, expertShards, parallel)
                : Mlp.bind(w, p + "mlp.", h, config.intermediateSize(), "intermediate_size", parallel);
        return new DecoderLayer(w.vector(p + "input_layernorm.weight", h, "hidden_size"), selfAttn,
                w.vector(p + "post_attention_layernorm.weight", h, "hidden_size"), mlp, config.rmsNormEps());
    }

    /** hidden: [n, hiddenSize], the residual stream, updated in place. */
    void forward(float[] hidden, Batch batch, ForwardObserver observer) {
        int n = batch.size(), h = inputNorm.length;
        float[] normed = new float[n * h], update = new float[n * h];
        rmsnorm(hidden, inputNorm, normed, n, h);
        selfAttn.forward(normed, batch, update);
        Kernels.add(update, hidden, n * h); // hidden += self_attn(input_layernorm(hidden))
        rmsnorm(hidden, postAttentionNorm, normed, n, h);
        mlp.forward(normed, n, update, observer);
        Kernels.add(update, hidden, n * h); // hidden += mlp(post_attention_layernorm(hidden))
    }

    private void rmsnorm(float[] x, float[] weight, float[] out, int n, int h) {
        for (int i = 0; i < n; i++) {
            Kernels.rmsnorm(out, i * h, x, i * h, weight, eps, h);
        }
    }
}
