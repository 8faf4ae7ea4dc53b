package io.flinkqwen3.runtime;

import io.flinkqwen3.model.Checkpoint;
import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.model.ModelFormatException;
import io.flinkqwen3.model.Tensor;
import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Matrix;
import io.flinkqwen3.tensor.PackedMatrix;
import io.flinkqwen3.tensor.Parallel;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The Qwen3 decoder (dense and MoE), one batched forward pass that reads top to bottom like
 * transformers' modeling_qwen3.py. Math lives in {@link Kernels} and the {@link Matrix} classes.
 *
 * <p>A batch is a list of tokens, each belonging to a sequence (its {@link KvCache}) at a position;
 * prefill of a prompt is many tokens of one sequence, a decode step is one token of many sequences.
 * The weights are read once per batch.
 */
public final class Qwen3Model implements AutoCloseable {

    record Attention(Matrix q, Matrix k, Matrix v, Matrix o, float[] qNorm, float[] kNorm) {}

    /** The feed-forward block of a layer: the only part where qwen3 and qwen3_moe differ. */
    sealed interface FeedForward permits Mlp, SparseMoe {}

    /** SwiGLU MLP: down(silu(gate(x)) * up(x)). Also one expert of a MoE layer. */
    record Mlp(Matrix gate, Matrix up, Matrix down) implements FeedForward {
        void forward(float[] x, int n, float[] out, Parallel parallel) {
            int inter = gate.rows();
            float[] g = new float[n * inter], u = new float[n * inter];
            gate.matmul(x, n, g, parallel);
            up.matmul(x, n, u, parallel);
            Kernels.siluAndMultiply(g, u, n * inter);
            down.matmul(g, n, out, parallel);
        }
    }

    /** Top-k routed experts, softmax over all experts in fp32, optional renormalisation; no shared expert. */
    record SparseMoe(Matrix router, Mlp[] experts, int topK, boolean normTopkProb) implements FeedForward {}

    record Layer(float[] inputNorm, Attention attention, float[] postAttentionNorm, FeedForward ffn) {}

    private final ModelConfig config;
    private final Checkpoint checkpoint;
    private final Parallel parallel;
    private final Matrix embedTokens;
    private final Layer[] layers;
    private final float[] finalNorm;
    private final Matrix lmHead;
    private final RotaryEmbedding rope;
    /** The packed copies of the weight matrices, unmapped on close. */
    private final Arena packed = Arena.ofShared();

    private Qwen3Model(Checkpoint checkpoint, Parallel parallel) {
        this.checkpoint = checkpoint;
        this.config = checkpoint.config();
        this.parallel = parallel;
        var w = new WeightBinder(checkpoint, parallel, packed);
        int h = config.hiddenSize(), hd = config.headDim();
        embedTokens = w.matrix("model.embed_tokens.weight", config.vocabSize(), h);
        layers = new Layer[config.numLayers()];
        for (int l = 0; l < layers.length; l++) {
            String p = "model.layers." + l + ".";
            var attention = new Attention(
                    w.matrix(p + "self_attn.q_proj.weight", config.qDim(), h),
                    w.matrix(p + "self_attn.k_proj.weight", config.kvDim(), h),
                    w.matrix(p + "self_attn.v_proj.weight", config.kvDim(), h),
                    w.matrix(p + "self_attn.o_proj.weight", h, config.qDim()),
                    w.vector(p + "self_attn.q_norm.weight", hd),
                    w.vector(p + "self_attn.k_norm.weight", hd));
            FeedForward ffn = config.isMoeLayer(l) ? sparseMoe(w, p + "mlp.") : mlp(w, p + "mlp.", config.intermediateSize());
            layers[l] = new Layer(w.vector(p + "input_layernorm.weight", h), attention,
                    w.vector(p + "post_attention_layernorm.weight", h), ffn);
        }
        finalNorm = w.vector("model.norm.weight", h);
        lmHead = config.tieWordEmbeddings() && !checkpoint.contains("lm_head.weight")
                ? embedTokens : w.matrix("lm_head.weight", config.vocabSize(), h);
        rope = new RotaryEmbedding(hd, config.rope());
    }

    private Mlp mlp(WeightBinder w, String p, int inter) {
        int h = config.hiddenSize();
        return new Mlp(w.matrix(p + "gate_proj.weight", inter, h), w.matrix(p + "up_proj.weight", inter, h),
                w.matrix(p + "down_proj.weight", h, inter));
    }

    private SparseMoe sparseMoe(WeightBinder w, String p) {
        var experts = new Mlp[config.numExperts()];
        for (int e = 0; e < experts.length; e++) {
            experts[e] = mlp(w, p + "experts." + e + ".", config.moeIntermediateSize());
        }
        return new SparseMoe(w.matrix(p + "gate.weight", config.numExperts(), config.hiddenSize()), experts,
                config.numExpertsPerTok(), config.normTopkProb());
    }

    /**
     * Binds the model to the checkpoint's weights, checking every shape against the config; the
     * matrices are repacked once into the kernels' layout ({@link PackedMatrix}, off-heap).
     */
    public static Qwen3Model load(Checkpoint checkpoint, Parallel parallel) {
        return new Qwen3Model(checkpoint, parallel);
    }

    public ModelConfig config() {
        return config;
    }

    public Checkpoint checkpoint() {
        return checkpoint;
    }

    public Parallel parallel() {
        return parallel;
    }

    public KvCache newCache(int maxPositions) {
        return new KvCache(config.numLayers(), config.kvDim(), Math.min(maxPositions, config.maxPositionEmbeddings()));
    }

    /**
     * Runs tokens[i] at positions[i] of the sequence with cache caches[i], appending their keys and
     * values to the caches, and returns the logits of the batch rows listed in {@code logitRows}
     * ([logitRows.length, vocab]). Tokens of one sequence must appear in position order.
     */
    public float[] forward(int[] tokens, int[] positions, KvCache[] caches, int[] logitRows, ForwardObserver observer) {
        int n = tokens.length, h = config.hiddenSize();
        for (int i = 0; i < n; i++) {
            caches[i].ensureCapacity(positions[i] + 1);
        }
        float[] x = new float[n * h];
        for (int i = 0; i < n; i++) {
            embedTokens.rowTo(tokens[i], x, i * h);
        }
        observer.hiddenState(0, x, n, h);

        float[] normed = new float[n * h];
        float[] residual = new float[n * h];
        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            rmsnormRows(normed, x, layer.inputNorm(), n);
            attention(l, layer.attention(), normed, positions, caches, n, residual);
            Kernels.add(residual, x, n * h);

            rmsnormRows(normed, x, layer.postAttentionNorm(), n);
            switch (layer.ffn()) {
                case Mlp mlp -> mlp.forward(normed, n, residual, parallel);
                case SparseMoe moe -> sparseMoe(l, moe, normed, n, residual, observer);
            }
            Kernels.add(residual, x, n * h);
            if (l < layers.length - 1) {
                observer.hiddenState(l + 1, x, n, h);
            }
        }
        for (int i = 0; i < n; i++) {
            caches[i].advanceTo(positions[i] + 1);
        }

        float[] last = new float[logitRows.length * h];
        for (int r = 0; r < logitRows.length; r++) {
            Kernels.rmsnorm(last, r * h, x, logitRows[r] * h, finalNorm, config.rmsNormEps(), h);
        }
        if (logitRows.length == n) {
            observer.hiddenState(layers.length, last, n, h);
        }
        float[] logits = new float[logitRows.length * config.vocabSize()];
        lmHead.matmul(last, logitRows.length, logits, parallel);
        return logits;
    }

    /**
     * Runs one sequence's tokens from its cache's current length on (a prefill) and returns the
     * logits of every position ([tokens, vocab]) or of the last one only ([vocab]).
     */
    public float[] prefill(int[] tokens, KvCache cache, boolean logitsForEveryPosition, ForwardObserver observer) {
        int start = cache.length();
        int[] positions = new int[tokens.length];
        Arrays.setAll(positions, i -> start + i);
        KvCache[] caches = new KvCache[tokens.length];
        Arrays.fill(caches, cache);
        int[] rows = logitsForEveryPosition ? new int[tokens.length] : new int[] {tokens.length - 1};
        if (logitsForEveryPosition) {
            Arrays.setAll(rows, i -> i); // batch rows, not positions: they differ when the cache is not empty
        }
        return forward(tokens, positions, caches, rows, observer);
    }

    private void rmsnormRows(float[] out, float[] x, float[] weight, int n) {
        int h = config.hiddenSize();
        for (int i = 0; i < n; i++) {
            Kernels.rmsnorm(out, i * h, x, i * h, weight, config.rmsNormEps(), h);
        }
    }

    /** Self-attention with QK-norm, rotary embedding, grouped-query heads and a causal mask over the cache. */
    private void attention(int layer, Attention a, float[] x, int[] positions, KvCache[] caches, int n, float[] out) {
        int hd = config.headDim(), heads = config.numHeads(), kvHeads = config.numKvHeads();
        int qDim = config.qDim(), kvDim = config.kvDim();
        float[] q = new float[n * qDim], k = new float[n * kvDim], v = new float[n * kvDim];
        a.q().matmul(x, n, q, parallel);
        a.k().matmul(x, n, k, parallel);
        a.v().matmul(x, n, v, parallel);

        parallel.forEach(n, i -> {
            float[] cos = new float[hd / 2], sin = new float[hd / 2];
            rope.at(positions[i], cos, sin);
            for (int hq = 0; hq < heads; hq++) {
                int off = i * qDim + hq * hd;
                Kernels.rmsnorm(q, off, q, off, a.qNorm(), config.rmsNormEps(), hd);
                Kernels.rope(q, off, cos, sin, hd);
            }
            for (int hk = 0; hk < kvHeads; hk++) {
                int off = i * kvDim + hk * hd;
                Kernels.rmsnorm(k, off, k, off, a.kNorm(), config.rmsNormEps(), hd);
                Kernels.rope(k, off, cos, sin, hd);
            }
            caches[i].store(layer, positions[i], k, i * kvDim, v, i * kvDim);
        });

        float[] context = new float[n * qDim];
        int groupSize = heads / kvHeads;
        float scale = (float) (1.0 / Math.sqrt(hd));
        parallel.forEach(n * heads, task -> {
            int i = task / heads, hq = task % heads;
            int kvOff = (hq / groupSize) * hd, qOff = i * qDim + hq * hd;
            MemorySegment keys = caches[i].keys(layer), values = caches[i].values(layer);
            int len = positions[i] + 1;
            float[] scores = new float[len];
            for (int t = 0; t < len; t++) {
                scores[t] = Kernels.dot(q, qOff, keys, 4L * (t * kvDim + kvOff), hd) * scale;
            }
            Kernels.softmax(scores, 0, len);
            for (int t = 0; t < len; t++) {
                Kernels.axpy(scores[t], values, 4L * (t * kvDim + kvOff), context, qOff, hd);
            }
        });
        a.o().matmul(context, n, out, parallel);
    }

    /** Routes each token to its top-k experts, then runs every chosen expert once over all its tokens. */
    private void sparseMoe(int layer, SparseMoe moe, float[] x, int n, float[] out, ForwardObserver observer) {
        int h = config.hiddenSize(), numExperts = moe.experts().length;
        float[] probs = new float[n * numExperts];
        moe.router().matmul(x, n, probs, parallel);
        observer.routerLogits(layer, probs, n, numExperts);

        List<List<int[]>> tokensOf = new ArrayList<>(numExperts);
        for (int e = 0; e < numExperts; e++) {
            tokensOf.add(new ArrayList<>());
        }
        float[][] weightOf = new float[n][];
        int[][] expertOf = new int[n][];
        for (int i = 0; i < n; i++) {
            Kernels.softmax(probs, i * numExperts, numExperts);
            expertOf[i] = TopK.indices(probs, i * numExperts, numExperts, moe.topK());
            weightOf[i] = new float[moe.topK()];
            float sum = 0f;
            for (int j = 0; j < moe.topK(); j++) {
                weightOf[i][j] = probs[i * numExperts + expertOf[i][j]];
                sum += weightOf[i][j];
            }
            for (int j = 0; j < moe.topK(); j++) {
                if (moe.normTopkProb()) {
                    weightOf[i][j] /= sum;
                }
                tokensOf.get(expertOf[i][j]).add(new int[] {i, j});
            }
        }

        Arrays.fill(out, 0, n * h, 0f);
        for (int e = 0; e < numExperts; e++) {
            List<int[]> routed = tokensOf.get(e);
            int m = routed.size();
            if (m == 0) {
                continue;
            }
            float[] in = new float[m * h], result = new float[m * h];
            for (int r = 0; r < m; r++) {
                System.arraycopy(x, routed.get(r)[0] * h, in, r * h, h);
            }
            moe.experts()[e].forward(in, m, result, parallel);
            for (int r = 0; r < m; r++) {
                int token = routed.get(r)[0];
                Kernels.axpy(weightOf[token][routed.get(r)[1]], result, r * h, out, token * h, h);
            }
        }
    }

    @Override
    public void close() {
        packed.close();
        checkpoint.close();
    }

    /** Looks tensors up by name, checks their shape against what the config implies, and packs them for the kernels. */
    private record WeightBinder(Checkpoint checkpoint, Parallel parallel, Arena packed) {
        Matrix matrix(String name, int rows, int cols) {
            Tensor t = checkpoint.tensor(name);
            if (t.shape().length != 2 || t.shape()[0] != rows || t.shape()[1] != cols) {
                throw new ModelFormatException(t.file() + ": tensor '" + name + "' has shape " + t.shapeString()
                        + ", the config implies [" + rows + ", " + cols + "]");
            }
            return PackedMatrix.pack(Matrix.of(t.type(), t.data(), rows, cols), parallel, packed);
        }

        float[] vector(String name, int size) {
            Tensor t = checkpoint.tensor(name);
            if (t.elements() != size || t.shape().length != 1) {
                throw new ModelFormatException(t.file() + ": tensor '" + name + "' has shape " + t.shapeString()
                        + ", the config implies [" + size + "]");
            }
            float[] out = new float[size];
            Matrix.of(t.type(), t.data(), 1, size).rowTo(0, out, 0);
            return out;
        }
    }
}
