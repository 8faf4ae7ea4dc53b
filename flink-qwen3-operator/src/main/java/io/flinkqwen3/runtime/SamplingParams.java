package io.flinkqwen3.runtime;

import io.flinkqwen3.model.GenerationConfig;

/**
 * How the next token is chosen. temperature 0 means greedy. topK 0 and topP 1 and minP 0 disable
 * those filters. The seed makes sampling reproducible.
 */
public record SamplingParams(float temperature, int topK, float topP, float minP, float presencePenalty, long seed) {
    public SamplingParams {
        if (temperature < 0 || topK < 0 || topP <= 0 || topP > 1 || minP < 0 || minP > 1) {
            throw new IllegalArgumentException("invalid sampling settings: temperature " + temperature + ", top_k " + topK
                    + ", top_p " + topP + ", min_p " + minP + " (need temperature >= 0, top_k >= 0, 0 < top_p <= 1, 0 <= min_p <= 1)");
        }
    }

    public static SamplingParams greedy() {
        return new SamplingParams(0f, 0, 1f, 0f, 0f, 0L);
    }

    /**
     * The defaults of a request that sets no sampling, as transformers takes them from
     * generation_config.json in either mode: greedy when it says {@code do_sample: false} (or leaves
     * do_sample out); else its temperature, top_p, top_k and min_p, each falling back to Qwen's
     * recommendation for the mode when absent (thinking: T 0.6, top-p 0.95, top-k 20; non-thinking:
     * T 0.7, top-p 0.8, top-k 20; min-p 0).
     */
    public static SamplingParams recommended(boolean thinking, GenerationConfig generation, long seed) {
        if (Boolean.FALSE.equals(generation.doSample())) {
            return greedy().withSeed(seed);
        }
        float t = generation.temperature() != null ? generation.temperature() : thinking ? 0.6f : 0.7f;
        float p = generation.topP() != null ? generation.topP() : thinking ? 0.95f : 0.8f;
        int k = generation.topK() != null ? generation.topK() : 20;
        float minP = generation.minP() != null ? generation.minP() : 0f;
        return new SamplingParams(t, k, p, minP, 0f, seed);
    }

    public SamplingParams withTemperature(float t) {
        return new SamplingParams(t, topK, topP, minP, presencePenalty, seed);
    }

    public SamplingParams withSeed(long s) {
        return new SamplingParams(temperature, topK, topP, minP, presencePenalty, s);
    }
}
