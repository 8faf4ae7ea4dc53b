package io.flinkqwen3.runtime;

import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Matrix;
import io.flinkqwen3.tensor.Parallel;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicIntegerArray;

/**
 * The sparse mixture-of-experts feed-forward of HF modeling_qwen3_moe.py's Qwen3MoeSparseMoeBlock
 * (llama.cpp: build_moe_ffn in qwen3moe.cpp): a linear router scores every expert, a softmax in fp32
 * turns the scores into probabilities, each token keeps its top-k experts (their probabilities
 * renormalized to sum to 1 when norm_topk_prob), and its output is the probability-weighted sum of
 * those experts' SwiGLU outputs. Qwen3-MoE has no shared expert.
 *
 * <p>The experts are split into shards ({@link ExpertShards}, planned from the measured routing
 * load). One parallel loop over the shards runs each shard on one thread: the whole SwiGLU of each of
 * its experts, for all the tokens routed to that expert in this pass, with no barrier per expert and
 * each expert's weights read by one thread. The plan balances the load on average, not in every pass
 * (one token's 8 experts fall 5:3 or worse on two shards more often than 4:4), so a thread that has
 * finished its shard then takes the experts another shard has not started yet. Every (token, choice)
 * gets its expert's output in a row of its own, and a token's output is summed over its choices in
 * rank order, so the result depends neither on the plan nor on which thread ran what. With one shard
 * the experts run one after another, each matrix multiply split over all threads.
 *
 * @param router  [experts, hidden] ({@code mlp.gate.weight})
 * @param experts each hidden -> moe_intermediate_size -> hidden ({@code mlp.experts.<e>.})
 */
record SparseMoeBlock(int layer, Matrix router, Mlp[] experts, int topK, boolean normTopkProb, ExpertShards shards,
                      Parallel parallel) implements FeedForward {
    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** One thread's buffers for running an expert, grown on demand, never allocated per expert. */
    private static final class Scratch {
        float[] in = new float[0], out = new float[0]; // [rows, hidden]
        float[] gate = new float[0], up = new float[0]; // [rows, intermediate]

        Scratch fit(int rows, int hidden, int intermediate) {
            if (in.length < rows * hidden) {
                in = new float[rows * hidden];
                out = new float[rows * hidden];
            }
            if (gate.length < rows * intermediate) {
                gate = new float[rows * intermediate];
                up = new float[rows * intermediate];
            }
            return this;
        }
    }

    /**
     * Binds {@code <prefix>gate.weight} and {@code <prefix>experts.<e>.*} of decoder layer {@code layer},
     * the experts split into {@code expertShards} shards.
     */
    static SparseMoeBlock bind(WeightBinder w, String prefix, int layer, ModelConfig config, int expertShards, Parallel parallel) {
        var experts = new Mlp[config.numExperts()];
        for (int e = 0; e < experts.length; e++) {
            experts[e] = Mlp.bind(w, prefix + "experts." + e + ".", config.hiddenSize(), config.moeIntermediateSize(),
                    "moe_intermediate_size", parallel);
        }
        return new SparseMoeBlock(layer, w.matrix(prefix + "gate.weight", config.numExperts(), config.hiddenSize(), "num_experts x hidden_size"),
                experts, config.numExpertsPerTok(), config.normTopkProb(), new ExpertShards(layer, experts.length, expertShards),
                parallel);
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

        // group the slots by expert (a counting sort): expert e's are slots[first[e] .. first[e+1])
        int[] first = new int[numExperts + 1];
        for (int e : expertOf) {
            first[e + 1]++;
        }
        int[] tokens = Arrays.copyOfRange(first, 1, numExperts + 1);
        for (int e = 0; e < numExperts; e++) {
            first[e + 1] += first[e];
        }
        int[] slots = new int[n * topK], filled = first.clone();
        for (int s = 0; s < slots.length; s++) {
            slots[filled[expertOf[s]]++] = s;
        }

        ExpertShards.Plan plan = shards.route(tokens);
        float[] results = new float[n * topK * h]; // [slots, hidden]: slot s's expert applied to slot s's token
        int[][] work = new int[plan.shards()][]; // each shard's experts that have tokens in this pass
        Arrays.setAll(work, shard -> Arrays.stream(plan.experts()[shard]).filter(e -> tokens[e] > 0).toArray());
        var started = new AtomicIntegerArray(plan.shards()); // experts of work[shard] claimed so far
        parallel.forEach(plan.shards(), shard -> {
            for (int k = 0; k < work.length; k++) { // its own shard, then what the others have not started
                int owner = (shard + k) % work.length;
                for (int i; (i = started.getAndIncrement(owner)) < work[owner].length; ) {
                    int e = work[owner][i];
                    runExpert(e, x, slots, first[e], tokens[e], results);
                }
            }
        });
        parallel.forEach(n, i -> { // out[i] = sum over j of weight[i, j] * results[i, j], j in rank order
            Arrays.fill(out, i * h, (i + 1) * h, 0f);
            for (int j = 0; j < topK; j++) {
                Kernels.axpy(weightOf[i * topK + j], results, (i * topK + j) * h, out, i * h, h);
            }
        });
    }

    /** Expert e on the calling thread for the m tokens of slots[from ..]: their rows of x in, the slots' rows of results out. */
    private void runExpert(int e, float[] x, int[] slots, int from, int m, float[] results) {
        int h = router.cols();
        Scratch s = SCRATCH.get().fit(m, h, experts[e].intermediate());
        for (int r = 0; r < m; r++) {
            System.arraycopy(x, slots[from + r] / topK * h, s.in, r * h, h);
        }
        experts[e].forward(s.in, m, s.out, s.gate, s.up);
        for (int r = 0; r < m; r++) {
            System.arraycopy(s.out, r * h, results, slots[from + r] * h, h);
        }
    }
}
