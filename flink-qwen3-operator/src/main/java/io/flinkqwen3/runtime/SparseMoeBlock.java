package io.flinkqwen3.runtime;

import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Matrix;
import io.flinkqwen3.tensor.Parallel;
import java.util.Arrays;

/**
 * The sparse mixture-of-experts feed-forward of HF modeling_qwen3_moe.py's Qwen3MoeSparseMoeBlock
 * (llama.cpp: build_moe_ffn in qwen3moe.cpp): a linear router scores every expert, a softmax in fp32
 * turns the scores into probabilities, each token keeps its top-k experts (their probabilities
 * renormalized to sum to 1 when norm_topk_prob), and its output is the probability-weighted sum of
 * those experts' SwiGLU outputs. Qwen3-MoE has no shared expert.
 *
 * @param router [experts, hidden] ({@code mlp.gate.weight})
 */
record SparseMoeBlock(int layer, Matrix router, Mlp[] experts, int topK, boolean normTopkProb, Parallel parallel)
        implements FeedForward {
    /** Binds {@code <prefix>gate.weight} and {@code <prefix>experts.<e>.*} of decoder layer {@code layer}. */
    static SparseMoeBlock bind(WeightBinder w, String prefix, int layer, ModelConfig config, Parallel parallel) {
        var experts = new Mlp[config.numExperts()];
        for (int e = 0; e < experts.length; e++) {
            experts[e] = Mlp.bind(w, prefix + "experts." + e + ".", config.hiddenSize(), config.moeIntermediateSize(), parallel);
        }
        return new SparseMoeBlock(layer, w.matrix(prefix + "gate.weight", config.numExperts(), config.hiddenSize()),
                experts, config.numExpertsPerTok(), config.normTopkProb(), parallel);
    }

    @Override
    public void forward(float[] x, int n, float[] out, ForwardObserver observer) {
        int h = router.cols(), numExperts = experts.length;
        float[] probs = new float[n * numExperts];
        router.matmul(x, n, probs, parallel); // x: [n, hidden] -> router logits: [n, experts]
        observer.routerLogits(layer, probs, n, numExperts);

        // routing: slot i*topK + j is token i's j-th expert, with its weight
        int[] expertOf = new int[n * topK];
        float[] weightOf = new float[n * topK];
        for (int i = 0; i < n; i++) {
            Kernels.softmax(probs, i * numExperts, numExperts);
            int[] top = TopK.indices(probs, i * numExperts, numExperts, topK);
            float sum = 0f;
            for (int j = 0; j < topK; j++) {
                expertOf[i * topK + j] = top[j];
                weightOf[i * topK + j] = probs[i * numExperts + top[j]];
                sum += weightOf[i * topK + j];
            }
            for (int j = 0; normTopkProb && j < topK; j++) {
                weightOf[i * topK + j] /= sum;
            }
        }

        // group the slots by expert (a counting sort), so each chosen expert runs once over all its tokens
        int[] first = new int[numExperts + 1];
        for (int e : expertOf) {
            first[e + 1]++;
        }
        for (int e = 0; e < numExperts; e++) {
            first[e + 1] += first[e];
        }
        int[] slots = new int[n * topK], filled = first.clone();
        for (int s = 0; s < slots.length; s++) {
            slots[filled[expertOf[s]]++] = s;
        }

        Arrays.fill(out, 0, n * h, 0f);
        for (int e = 0; e < numExperts; e++) {
            int m = first[e + 1] - first[e];
            if (m == 0) {
                continue;
            }
            float[] in = new float[m * h], result = new float[m * h]; // [m, hidden]: the tokens routed to e
            for (int r = 0; r < m; r++) {
                System.arraycopy(x, slots[first[e] + r] / topK * h, in, r * h, h);
            }
            experts[e].forward(in, m, result, observer);
            for (int r = 0; r < m; r++) {
                int slot = slots[first[e] + r];
                Kernels.axpy(weightOf[slot], result, r * h, out, slot / topK * h, h); // out[token] += weight * result[r]
            }
        }
    }
}
