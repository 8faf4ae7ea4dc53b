package io.flinkqwen3.runtime;

import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: presence penalty, then temperature, top-k, top-p and min-p (the
 * order transformers applies them), then a draw from a seeded generator.
 *
 * <p>The candidates are never sorted as a whole, so the cost of a sample does not grow with top_k:
 * a top-k of at most {@link #HEAP_K} is taken with a bounded heap (O(vocab log HEAP_K)) and walked
 * in order; any larger one (top_k 0 = all, or a top_k beyond the vocabulary) by partial selection,
 * which finds the top-k, the top-p prefix and the drawn token by partitioning (O(vocab) expected,
 * about 3 passes over the vocabulary; O(vocab log vocab) at worst). Both give the draws of a full
 * sort, up to the rounding of the sums.
 */
public final class Sampler {
    /** Top-k up to this size is taken with {@link TopK#indices} (a heap of k) and sorted. */
    static final int HEAP_K = 1024;

    private final SamplingParams params;
    private final SplittableRandom random;
    private final BitSet seen = new BitSet();
    private long lastWork;

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
            lastWork = vocab;
            return argmax(logits, off, vocab);
        }
        int k = params.topK() > 0 ? Math.min(params.topK(), vocab) : vocab;
        return k <= HEAP_K ? sampleSorted(logits, off, vocab, k) : sampleSelected(logits, off, vocab, k);
    }

    /** A small top-k: the k best in order (a heap of k over the vocabulary), then a walk. */
    int sampleSorted(float[] logits, int off, int vocab, int k) {
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
            if (params.topP() < 1f && cumulative >= params.topP() && i + 1 < keep) {
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
        lastWork = (long) vocab * (32 - Integer.numberOfLeadingZeros(k)); // the heap's bound: log2(k) + 1 per value
        for (int i = 0; i < keep; i++) {
            r -= probs[i];
            if (r <= 0) {
                return candidates[i];
            }
        }
        return candidates[keep - 1];
    }

    /**
     * Any top-k, by partial selection: the same candidates, top-p prefix, min-p cut and draw as
     * {@link #sampleSorted}, without ordering the candidates. Weights are left unnormalized (the
     * best token's is exp(0) = 1) and the thresholds scaled by their sum instead.
     */
    int sampleSelected(float[] logits, int off, int vocab, int k) {
        Scratch s = SCRATCH.get().ensure(vocab);
        long[] keys = s.keys;
        double[] weights = s.weights;
        long best = Long.MIN_VALUE;
        for (int i = 0; i < vocab; i++) {
            keys[i] = TopK.key(logits[off + i], i);
            best = Math.max(best, keys[i]);
        }
        long work = vocab;
        if (k < vocab) {
            work += TopK.selectLargest(keys, 0, vocab, k); // the top k at the front, unordered
        }
        float t = params.temperature();
        double max = logits[off + TopK.index(best)] / t, sum = 0;
        for (int i = 0; i < k; i++) {
            weights[i] = Math.exp(logits[off + TopK.index(keys[i])] / t - max);
            sum += weights[i];
        }
        work += k;
        // top-p: the smallest prefix (in rank order) whose mass reaches top_p
        int keep = k;
        double total = sum;
        if (params.topP() < 1f) {
            int reached = massSelect(keys, weights, k, params.topP() * sum, s);
            work += s.work;
            if (reached >= 0) {
                keep = reached + 1;
                total = s.mass;
            }
        }
        // min-p: the tokens of that prefix at or above min_p times the best weight (1); the best always stays
        float floor = params.minP();
        if (floor > 0) {
            int kept = 0;
            total = 0;
            for (int i = 0; i < keep; i++) {
                if (!(weights[i] < floor)) {
                    total += weights[i];
                    swap(keys, weights, i, kept++);
                }
            }
            keep = Math.max(kept, 1);
            total = kept > 0 ? total : weights[0];
            work += keep;
        }
        double r = random.nextDouble() * total;
        int drawn = massSelect(keys, weights, keep, r, s);
        lastWork = work + s.work;
        if (drawn >= 0) {
            return TopK.index(keys[drawn]);
        }
        long last = keys[0]; // rounding left r above the running sum: the last kept token, where a walk ends
        for (int i = 1; i < keep; i++) {
            last = Math.min(last, keys[i]);
        }
        return TopK.index(last);
    }

    /**
     * Where the running sum of weights, taken in rank order (largest key first) over [0, n), first
     * reaches target: rearranges keys and weights so that everything ranking before that element
     * lies in front of it, and returns its position, with the sum up to it in {@code s.mass}; -1 when
     * the sum never reaches target. Quickselect on mass: each round partitions, sums the better
     * side and goes on in the side that holds the crossing. The first round splits at weights
     * {@link #SPLIT_HIGH} and {@link #SPLIT_LOW} (the weights are relative to the best token's 1),
     * later rounds around a median of three; after 2 log2(n) rounds the rest is sorted. O(n)
     * expected, O(n log n) at worst; the elements visited are left in {@code s.work}.
     */
    static int massSelect(long[] keys, double[] weights, int n, double target, Scratch s) {
        s.work = 0;
        int lo = 0, hi = n, rounds = 2 * (32 - Integer.numberOfLeadingZeros(Math.max(1, n)));
        double before = 0; // the mass of [0, lo): everything there ranks before [lo, hi)
        if (n > TopK.SMALL) {
            // weight is monotone in rank, so each band of weights is a stretch of the ranking:
            // [0, a) >= SPLIT_HIGH > [a, b) >= SPLIT_LOW > [b, n)
            int a = 0, b = 0;
            double high = 0, middle = 0;
            for (int i = 0; i < n; i++) {
                double w = weights[i];
                if (w >= SPLIT_LOW) {
                    swap(keys, weights, i, b);
                    if (w >= SPLIT_HIGH) {
                        high += w;
                        swap(keys, weights, b, a++);
                    } else {
                        middle += w;
                    }
                    b++;
                }
            }
            s.work += n;
            if (a > 0 && high >= target) {
                hi = a;
            } else if (b > a && high + middle >= target) {
                before = high;
                lo = a;
                hi = b;
            } else {
                before = high + middle;
                lo = b;
            }
        }
        while (hi - lo > TopK.SMALL && rounds-- > 0) {
            int p = TopK.partition(keys, weights, lo, hi);
            double above = 0;
            for (int i = lo; i < p; i++) {
                above += weights[i];
            }
            s.work += hi - lo;
            if (p > lo && before + above >= target) {
                hi = p;
            } else if (before + above + weights[p] >= target) {
                s.mass = before + above + weights[p];
                return p;
            } else {
                before += above + weights[p];
                lo = p + 1;
            }
        }
        s.work += TopK.sortDescending(keys, weights, lo, hi);
        for (int i = lo; i < hi; i++) {
            before += weights[i];
            if (before >= target) {
                s.mass = before;
                return i;
            }
        }
        return -1;
    }

    /** Where the first round of {@link #massSelect} splits the weights: 2^-10 and 2^-20 of the best token's. */
    private static final double SPLIT_HIGH = 0x1p-10, SPLIT_LOW = 0x1p-20;

    private static void swap(long[] keys, double[] weights, int i, int j) {
        long k = keys[i];
        keys[i] = keys[j];
        keys[j] = k;
        double w = weights[i];
        weights[i] = weights[j];
        weights[j] = w;
    }

    /** Elements visited by the last {@link #sample} (for tests: O(vocab) whatever top_k is). */
    long lastWork() {
        return lastWork;
    }

    /**
     * Per-thread working arrays of vocabulary size: a request's sampler runs on the engine's
     * scheduler thread, and the arrays are reused from token to token and request to request.
     */
    static final class Scratch {
        long[] keys = new long[0];
        double[] weights = new double[0];
        long work;
        double mass;

        Scratch ensure(int n) {
            if (keys.length < n) {
                keys = new long[n];
                weights = new double[n];
            }
            return this;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

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
