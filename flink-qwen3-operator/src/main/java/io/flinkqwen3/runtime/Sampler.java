package io.flinkqwen3.runtime;

import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: presence penalty, then temperature, top-k, top-p and min-p (the
 * order transformers applies them), then a draw from a seeded generator.
 */
public final class Sampler {
    private final SamplingParams params;
    private final SplittableRandom random;
    private final BitSet seen = new BitSet();

    public Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    /** Records a generated token (for the presence penalty). */
    public void observe(int token) {
        seen.set(token);
    }

    public int sample(float[] logits, int off, int vocab) {
        if (params.presencePenalty() != 0f) {
            for (int t = seen.nextSetBit(0); t >= 0 && t < vocab; t = seen.nextSetBit(t + 1)) {
                logits[off + t] -= params.presencePenalty();
            }
        }
        if (params.temperature() == 0f) {
            return argmax(logits, off, vocab);
        }
        int k = params.topK() > 0 ? Math.min(params.topK(), vocab) : vocab;
        int[] candidates = TopK.indices(logits, off, vocab, k);
        double[] probs = new double[k];
        double max = logits[off + candidates[0]] / params.temperature(), sum = 0;
        for (int i = 0; i < k; i++) {
            probs[i] = Math.exp(logits[off + candidates[i]] / params.temperature() - max);
            sum += probs[i];
        }
        int keep = k;
        double cumulative = 0;
        for (int i = 0; i < k; i++) {
            probs[i] /= sum;
            cumulative += probs[i];
            if (cumulative >= params.topP() && i + 1 < keep) {
                keep = i + 1; // the smallest prefix whose mass reaches top_p
            }
        }
        double floor = params.minP() * probs[0];
        while (keep > 1 && probs[keep - 1] < floor) {
            keep--;
        }
        double total = 0;
        for (int i = 0; i < keep; i++) {
            total += probs[i];
        }
        double r = random.nextDouble() * total;
        for (int i = 0; i < keep; i++) {
            r -= probs[i];
            if (r <= 0) {
                return candidates[i];
            }
        }
        return candidates[keep - 1];
    }

    public static int argmax(float[] x, int off, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (x[off + i] > x[off + best]) {
                best = i;
            }
        }
        return best;
    }
}
