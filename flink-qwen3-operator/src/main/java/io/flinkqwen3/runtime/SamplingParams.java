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
     * Qwen's recommendation for the mode (thinking: T 0.6, top-p 0.95, top-k 20; non-thinking: T 0.7,
     * top-p 0.8, top-k 20; min-p 0), overridden by what generation_config.json sets for thinking mode.
     */
    public static SamplingParams recommended(boolean thinking, GenerationConfig generation, long seed) {
        float t = thinking ? 0.6f : 0.7f, p = thinking ? 0.95f : 0.8f;
        int k = 20;
        float minP = 0f;
        if (thinking) {
            t = generation.temperature() != null ? generation.temperature() : t;
            p = generation.topP() != null ? generation.topP() : p;
            k = generation.topK() != null ? generation.topK() : k;
            minP = generation.minP() != null ? generation.minP() : minP;
        }
        return new SamplingParams(t, k, p, minP, 0f, seed);
    }

    public SamplingParams withTemperature(float t) {
        return new SamplingParams(t, topK, topP, minP, presencePenalty, seed);
    }

    public SamplingParams withSeed(long s) {
        return new SamplingParams(temperature, topK, topP, minP, presencePenalty, s);
    }
}
