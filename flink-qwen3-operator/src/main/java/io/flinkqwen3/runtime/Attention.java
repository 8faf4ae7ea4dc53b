package io.flinkqwen3.runtime;

import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Matrix;
import io.flinkqwen3.tensor.Parallel;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Self-attention of HF modeling_qwen3.py's Qwen3Attention: q/k/v projections, an RMSNorm over each
 * query and key head (QK-norm), the rotary embedding, grouped-query attention over the KV cache with
 * a causal mask (softmax(q·k / sqrt(headDim)) · v), and the output projection. numHeads / numKvHeads
 * query heads share each key/value head.
 */
final class Attention {
    private static final VectorSpecies<Float> F = Kernels.F;
    /**
     * Query rows (tokens times their group's heads) that attend together: every key and value row
     * read from the cache serves all of them, and their scores stay small enough for the L2 cache.
     */
    private static final int BLOCK_ROWS = 32;
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

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
    private final int group; // query heads per key/value head
    private final int tokensPerBlock;
    private final float eps;
    private final float scale;
    private final Parallel parallel;

    /** Per-thread buffers of {@link #attend}, grown on demand, never allocated per task. */
    private static final class Scratch {
        float[] queries = new float[0]; // [rows, headDim]
        float[] scores = new float[0]; // [rows, keys]
        float[] mixed = new float[0]; // [rows, headDim]
        float[] sums = new float[0]; // [rows]

        Scratch fit(int rows, int headDim, int keys) {
            if (sums.length < rows || queries.length < rows * headDim) {
                queries = new float[rows * headDim];
                mixed = new float[rows * headDim];
                sums = new float[rows];
            }
            if (scores.length < rows * keys) {
                scores = new float[rows * keys];
            }
            return this;
        }
    }

    private Attention(int layer, WeightBinder w, String prefix, ModelConfig config, Parallel parallel) {
        int h = config.hiddenSize();
        this.layer = layer;
        this.heads = config.numHeads();
        this.kvHeads = config.numKvHeads();
        this.headDim = config.headDim();
        this.group = heads / kvHeads;
        this.tokensPerBlock = Math.max(1, BLOCK_ROWS / group);
        this.eps = config.rmsNormEps();
        this.scale = (float) (1.0 / Math.sqrt(headDim));
        this.parallel = parallel;
        String q = "num_attention_heads * head_dim", kv = "num_key_value_heads * head_dim";
        qProj = w.matrix(prefix + "q_proj.weight", config.qDim(), h, q + " x hidden_size");
        kProj = w.matrix(prefix + "k_proj.weight", config.kvDim(), h, kv + " x hidden_size");
        vProj = w.matrix(prefix + "v_proj.weight", config.kvDim(), h, kv + " x hidden_size");
        oProj = w.matrix(prefix + "o_proj.weight", h, config.qDim(), "hidden_size x " + q);
        qNorm = w.vector(prefix + "q_norm.weight", headDim, "head_dim");
        kNorm = w.vector(prefix + "k_norm.weight", headDim, "head_dim");
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
        // x: [n, hidden] -> q: [n, heads * headDim], k and v: [n, kvHeads * headDim], in one parallel loop
        Matrix.matmulAll(parallel, x, n, new Matrix[] {qProj, kProj, vProj}, new float[][] {q, k, v});

        parallel.forEach(n, i -> { // per token: QK-norm and rotary embedding, then k and v into its cache
            normAndRotate(q, i * qDim, heads, qNorm, batch, i);
            normAndRotate(k, i * kvDim, kvHeads, kNorm, batch, i);
            batch.caches()[i].store(layer, batch.positions()[i], k, i * kvDim, v, i * kvDim);
        });

        float[] context = new float[n * qDim]; // [n, heads * headDim]
        int[] blocks = queryBlocks(batch);
        int count = blocks.length - 1;
        parallel.forEach(count * kvHeads, task -> {
            // blocks in the order 0, last, 1, last - 1, ...: any run of tasks mixes short and long
            // causal rows, so the pool's chunks of tasks take about the same time
            int slot = task / kvHeads, b = slot % 2 == 0 ? slot / 2 : count - 1 - slot / 2;
            attend(q, batch, blocks[b], blocks[b + 1], task % kvHeads, context);
        });
        oProj.matmul(context, n, out, parallel); // context: [n, heads * headDim] -> out: [n, hidden]
    }

    /**
     * Splits the batch into blocks of at most {@link #tokensPerBlock} consecutive tokens of one
     * sequence; returns each block's first row, then n.
     */
    private int[] queryBlocks(Batch batch) {
        int n = batch.size(), count = 0;
        int[] starts = new int[n + 1];
        for (int i = 0; i < n; i++) {
            if (count == 0 || i - starts[count - 1] == tokensPerBlock || batch.caches()[i] != batch.caches()[i - 1]) {
                starts[count++] = i;
            }
        }
        starts[count] = n;
        return Arrays.copyOf(starts, count + 1);
    }

    /**
     * Causal attention of tokens [from, to) of one sequence, for the query heads of one key/value
     * head: softmax(q · k / sqrt(headDim)) · v over positions 0..position of each token.
     */
    private void attend(float[] q, Batch batch, int from, int to, int kvHead, float[] context) {
        int qDim = heads * headDim, rows = (to - from) * group, padded = (rows + 3) & ~3;
        int keys = 0;
        for (int i = from; i < to; i++) {
            keys = Math.max(keys, batch.positions()[i] + 1);
        }
        Scratch s = SCRATCH.get().fit(padded, headDim, keys);
        // queries: [padded, headDim]; row (i - from) * group + g is head kvHead * group + g of token
        // i, so a token's rows are adjacent in q too
        for (int i = from; i < to; i++) {
            System.arraycopy(q, i * qDim + kvHead * group * headDim, s.queries, (i - from) * group * headDim, group * headDim);
        }
        Arrays.fill(s.queries, rows * headDim, padded * headDim, 0f);
        KvCache cache = batch.caches()[from];
        cache.scores(layer, kvHead, s.queries, padded, keys, s.scores); // -> scores: [padded, keys]
        for (int r = 0; r < rows; r++) {
            s.sums[r] = softmaxNumerators(s.scores, r * keys, batch.positions()[from + r / group] + 1, keys, scale);
        }
        cache.mixValues(layer, kvHead, s.scores, padded, keys, s.mixed); // -> mixed: [padded, headDim]
        for (int r = 0; r < rows; r++) {
            int at = (from + r / group) * qDim + (kvHead * group + r % group) * headDim;
            Kernels.axpy(1f / s.sums[r], s.mixed, r * headDim, context, at, headDim); // the softmax's division
        }
    }

    /**
     * Turns one row of scores into unnormalized softmax weights: exp((s[t] - max) * scale) for t
     * below the causal limit {@code len}, 0 from there to {@code keys}. Returns their sum: scaling
     * the mixed values by its inverse costs headDim multiplications per row instead of len.
     */
    private static float softmaxNumerators(float[] s, int off, int len, int keys, float scale) {
        int bound = F.loopBound(len), t = 0;
        var maxes = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (; t < bound; t += F.length()) {
            maxes = maxes.max(FloatVector.fromArray(F, s, off + t));
        }
        float max = maxes.reduceLanes(VectorOperators.MAX);
        for (; t < len; t++) {
            max = Math.max(max, s[off + t]);
        }
        var sums = FloatVector.zero(F);
        for (t = 0; t < bound; t += F.length()) {
            var e = FloatVector.fromArray(F, s, off + t).sub(max).mul(scale).lanewise(VectorOperators.EXP);
            e.intoArray(s, off + t);
            sums = sums.add(e);
        }
        float sum = sums.reduceLanes(VectorOperators.ADD);
        for (; t < len; t++) {
            s[off + t] = (float) Math.exp((s[off + t] - max) * scale);
            sum += s[off + t];
        }
        Arrays.fill(s, off + len, off + keys, 0f);
        return sum;
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
