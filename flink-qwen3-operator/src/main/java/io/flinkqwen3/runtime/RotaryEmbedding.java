package io.flinkqwen3.runtime;

import io.flinkqwen3.model.RopeScaling;

/**
 * cos/sin tables of rotary position embeddings, computed as transformers does: inv_freq in fp32,
 * angle = position * inv_freq, optionally YaRN-scaled (frequency ramp plus attention factor).
 */
final class RotaryEmbedding {
    private final float[] invFreq;
    private final float attentionScaling;
    private final int half;

    RotaryEmbedding(int headDim, RopeScaling rope) {
        half = headDim / 2;
        invFreq = new float[half];
        for (int i = 0; i < half; i++) {
            invFreq[i] = (float) (1.0 / Math.pow(rope.theta(), (2.0 * i) / headDim));
        }
        if (rope.isYarn()) {
            applyYarn(headDim, rope);
            attentionScaling = rope.factor() <= 1 ? 1f : (float) (0.1 * Math.log(rope.factor()) + 1.0);
        } else {
            attentionScaling = 1f;
        }
    }

    /** YaRN (transformers' _compute_yarn_parameters, beta_fast 32, beta_slow 1, truncate). */
    private void applyYarn(int dim, RopeScaling rope) {
        double base = rope.theta(), factor = rope.factor();
        int original = rope.originalMaxPositions();
        double low = Math.max(Math.floor(correctionDim(32, dim, base, original)), 0);
        double high = Math.min(Math.ceil(correctionDim(1, dim, base, original)), dim - 1);
        if (low == high) {
            high += 0.001;
        }
        for (int i = 0; i < half; i++) {
            float ramp = (float) Math.min(1, Math.max(0, (i - low) / (high - low)));
            float extrapolationFactor = 1f - ramp;
            float extrapolated = invFreq[i];
            float interpolated = (float) (extrapolated / factor);
            invFreq[i] = interpolated * (1 - extrapolationFactor) + extrapolated * extrapolationFactor;
        }
    }

    private static double correctionDim(double rotations, int dim, double base, int maxPositions) {
        return dim * Math.log(maxPositions / (rotations * 2 * Math.PI)) / (2 * Math.log(base));
    }

    int halfDim() {
        return half;
    }

    /** Fills cos and sin (length headDim/2) for one position. */
    void at(int position, float[] cos, float[] sin) {
        for (int i = 0; i < half; i++) {
            float angle = position * invFreq[i];
            cos[i] = (float) Math.cos(angle) * attentionScaling;
            sin[i] = (float) Math.sin(angle) * attentionScaling;
        }
    }
}
