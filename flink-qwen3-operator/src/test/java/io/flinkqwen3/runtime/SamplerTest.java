package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class SamplerTest {
    static final float[] LOGITS = {2.0f, 1.0f, 0.5f, 3.0f, -1.0f, 2.9f};

    static int[] histogram(SamplingParams p, int draws) {
        var s = new Sampler(p);
        int[] h = new int[LOGITS.length];
        for (int i = 0; i < draws; i++) {
            h[s.sample(LOGITS.clone(), 0, LOGITS.length)]++;
        }
        return h;
    }

    @Test
    void temperatureZeroIsArgmax() {
        assertEquals(3, new Sampler(SamplingParams.greedy()).sample(LOGITS.clone(), 0, LOGITS.length));
    }

    @Test
    void samplingFollowsTheSoftmaxAtTheTemperature() {
        int draws = 200_000;
        int[] h = histogram(new SamplingParams(0.7f, 0, 1f, 0f, 0f, 1L), draws);
        double z = 0;
        for (float l : LOGITS) {
            z += Math.exp(l / 0.7);
        }
        for (int i = 0; i < LOGITS.length; i++) {
            double expected = Math.exp(LOGITS[i] / 0.7) / z;
            assertEquals(expected, h[i] / (double) draws, 0.005, "token " + i);
        }
    }

    @Test
    void topKTopPAndMinPRestrictTheCandidates() {
        int[] topK = histogram(new SamplingParams(1f, 2, 1f, 0f, 0f, 2L), 5000);
        assertEquals(5000, topK[3] + topK[5], "top-2 keeps tokens 3 and 5 only");
        // p(3) ~ 0.42 and p(5) ~ 0.38 at T=1: top-p 0.5 needs both, top-p 0.3 only token 3
        int[] topP = histogram(new SamplingParams(1f, 0, 0.3f, 0f, 0f, 3L), 2000);
        assertEquals(2000, topP[3]);
        int[] minP = histogram(new SamplingParams(1f, 0, 1f, 0.5f, 0f, 4L), 5000);
        // min-p 0.5 keeps tokens with p >= 0.5 * p_max: 3, 5 and 0 (e^-1 = 0.37 < 0.5 drops token 0)
        assertEquals(5000, minP[3] + minP[5]);
        assertTrue(minP[3] > 0 && minP[5] > 0);
    }

    @Test
    void presencePenaltyDemotesTokensAlreadyGenerated() {
        var s = new Sampler(new SamplingParams(0f, 0, 1f, 0f, 1.5f, 0L));
        assertEquals(3, s.sample(LOGITS.clone(), 0, LOGITS.length));
        s.observe(3);
        assertEquals(5, s.sample(LOGITS.clone(), 0, LOGITS.length), "3.0 - 1.5 falls below 2.9");
    }
}
