package io.flinkqwen3.runtime;

import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Matrix;
import io.flinkqwen3.tensor.Parallel;

/**
 * Self-attention of HF modeling_qwen3.py's Qwen3Attention: q/k/v projections, an RMSNorm over each
 * query and key head (QK-norm), the rotary embedding, grouped-query attention over the KV cache with
 * a causal mask (softmax(q·k / sqrt(headDim)) · v), and the output projection. numHeads / numKvHeads
 * query heads share each key/value head.
 */
final class Attention {
    private final int layer;
    private final Matrix qProj; // [heads * headDim, hidden]
    private final Matrix kProj; // [kvHeads * headDim, hidden]
    private final Matrix vProj; // [kvHeads * headDim, hidden]
    private final Matrix oProj; // [hidden, heads * headDim]
    private final float[] qNorm; // [headDim]
    private final float[] kNorm; // [headDim]
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final float eps;
    private final Parallel parallel;

    private Attention(int layer, WeightBinder w, String prefix, ModelConfig config, Parallel parallel) {
        int h = config.hiddenSize();
        this.layer = layer;
        this.heads = config.numHeads();
        this.kvHeads = config.numKvHeads();
        this.headDim = config.headDim();
        this.eps = config.rmsNormEps();
        this.parallel = parallel;
        qProj = w.matrix(prefix + "q_proj.weight", config.qDim(), h);
        kProj = w.matrix(prefix + "k_proj.weight", config.kvDim(), h);
        vProj = w.matrix(prefix + "v_proj.weight", config.kvDim(), h);
        oProj = w.matrix(prefix + "o_proj.weight", h, config.qDim());
        qNorm = w.vector(prefix + "q_norm.weight", headDim);
        kNorm = w.vector(prefix + "k_norm.weight", headDim);
    }

    /** Binds {@code <prefix>{q,k,v,o}_proj.weight} and {@code <prefix>{q,k}_norm.weight} of decoder layer {@code layer}. */
    static Attention bind(WeightBinder w, String prefix, int layer, ModelConfig config, Parallel parallel) {
        return new Attention(layer, w, prefix, config, parallel);
    }

    /**
     * x: [n, hidden] (normed) -> out: [n, hidden] (overwritten). First appends the batch's keys and
     * values of this layer to their caches, so a token attends to the earlier tokens of its own batch.
     */
    void forward(float[] x, Batch batch, float[] out) {
        int n = batch.size(), qDim = heads * headDim, kvDim = kvHeads * headDim;
        float[] q = new float[n * qDim], k = new float[n * kvDim], v = new float[n * kvDim];
        qProj.matmul(x, n, q, parallel); // x: [n, hidden] -> q: [n, heads * headDim]
        kProj.matmul(x, n, k, parallel); // x: [n, hidden] -> k: [n, kvHeads * headDim]
        vProj.matmul(x, n, v, parallel); // x: [n, hidden] -> v: [n, kvHeads * headDim]

        parallel.forEach(n, i -> {
            normAndRotate(q, i * qDim, heads, qNorm, batch, i);
            normAndRotate(k, i * kvDim, kvHeads, kNorm, batch, i);
            batch.caches()[i].store(layer, batch.positions()[i], k, i * kvDim, v, i * kvDim);
        });

        float[] context = new float[n * qDim]; // [n, heads * headDim]
        int group = heads / kvHeads;
        float scale = (float) (1.0 / Math.sqrt(headDim));
        parallel.forEach(n * kvHeads, task -> {
            int i = task / kvHeads, kvHead = task % kvHeads, keys = batch.positions()[i] + 1;
            int off = i * qDim + kvHead * group * headDim; // the group's query heads are adjacent
            float[] queries = java.util.Arrays.copyOfRange(q, off, off + group * headDim); // [group, headDim]
            float[] scores = new float[group * keys]; // [group, keys]
            batch.caches()[i].scores(layer, kvHead, queries, group, keys, scores);
            for (int r = 0; r < group; r++) {
                for (int t = 0; t < keys; t++) {
                    scores[r * keys + t] *= scale;
                }
                Kernels.softmax(scores, r * keys, keys);
            }
            float[] mixed = new float[group * headDim];
            batch.caches()[i].mixValues(layer, kvHead, scores, group, keys, mixed);
            System.arraycopy(mixed, 0, context, off, group * headDim);
        });
        oProj.matmul(context, n, out, parallel); // context: [n, heads * headDim] -> out: [n, hidden]
    }

    /** RMSNorm, then the rotary embedding, on each of the token's heads ([headDim] each) from x[off]. */
    private void normAndRotate(float[] x, int off, int count, float[] norm, Batch batch, int i) {
        for (int head = 0; head < count; head++) {
            int at = off + head * headDim;
            Kernels.rmsnorm(x, at, x, at, norm, eps, headDim);
            Kernels.rope(x, at, batch.cos()[i], batch.sin()[i], headDim);
        }
    }
}
