package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.Fixtures;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The engine on a real checkpoint (the MoE fixture, real Qwen3 tokenizer). */
class Qwen3EngineTest {
    static Qwen3Engine engine;

    @BeforeAll
    static void open() {
        engine = Qwen3Engine.open(Fixtures.MOE.toString(), EngineOptions.defaults().withThreads(2));
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    static GenerationRequest greedy(int[] prompt, int maxTokens) {
        return GenerationRequest.builder().promptTokens(prompt).maxTokens(maxTokens).sampling(SamplingParams.greedy()).build();
    }

    @Test
    void greedyGenerationEqualsTheTransformersContinuation() {
        var ref = new Fixtures.Reference(Fixtures.MOE.resolve("reference.safetensors"));
        for (int p = 0; p < ref.prompts(); p++) {
            GenerationResult r = engine.generate(greedy(ref.ints("p" + p + ".ids"), 24));
            assertArrayEquals(ref.ints("p" + p + ".greedy"), r.outputTokens(), "prompt " + p);
            assertEquals(FinishReason.LENGTH, r.finishReason());
        }
    }

    @Test
    void requestsBatchedTogetherGiveTheSameTokensAsAlone() {
        var ref = new Fixtures.Reference(Fixtures.MOE.resolve("reference.safetensors"));
        List<CompletableFuture<GenerationResult>> together = new ArrayList<>();
        for (int p = 0; p < ref.prompts(); p++) {
            together.add(engine.submit(greedy(ref.ints("p" + p + ".ids"), 24), Long.MAX_VALUE));
        }
        for (int p = 0; p < ref.prompts(); p++) {
            assertArrayEquals(ref.ints("p" + p + ".greedy"), together.get(p).join().outputTokens(), "prompt " + p + " in a batch");
        }
    }

    @Test
    void seededSamplingIsReproducible() {
        int[] prompt = engine.tokenizer().encode("Tell me a story");
        var sampling = new SamplingParams(0.9f, 50, 0.95f, 0f, 0f, 42L);
        var request = GenerationRequest.builder().promptTokens(prompt).maxTokens(20).sampling(sampling).build();
        int[] first = engine.generate(request).outputTokens();
        int[] second = engine.generate(request).outputTokens();
        assertArrayEquals(first, second);
        var other = GenerationRequest.builder().promptTokens(prompt).maxTokens(20).sampling(sampling.withSeed(7L)).build();
        assertNotEquals(Arrays.toString(first), Arrays.toString(engine.generate(other).outputTokens()));
    }

    @Test
    void promptTokensOutsideTheVocabularyAreRefusedAndTheEngineGoesOn() {
        int vocab = engine.config().vocabSize();
        for (int bad : new int[] {-5, vocab, Integer.MAX_VALUE}) {
            var request = GenerationRequest.builder().promptTokens(new int[] {1, bad}).maxTokens(2).build();
            var e = assertThrows(IllegalArgumentException.class, () -> engine.submit(request, Long.MAX_VALUE));
            assertTrue(e.getMessage().contains("outside the vocabulary"), e.getMessage());
        }
        assertEquals(2, engine.generate(GenerationRequest.builder().promptTokens(new int[] {1, 2}).maxTokens(2).build()).outputTokens().length);
    }

    @Test
    void budgetZeroRendersTheNonThinkingTemplate() {
        int[] prompt = engine.promptTokens(GenerationRequest.builder().user("hi").thinkingBudget(0).maxTokens(4).build());
        int[] tail = Arrays.copyOfRange(prompt, prompt.length - 4, prompt.length);
        assertArrayEquals(new int[] {151667, 271, 151668, 271}, tail, "ends with <think>\\n\\n</think>\\n\\n");
        int[] thinking = engine.promptTokens(GenerationRequest.builder().user("hi").maxTokens(4).build());
        assertEquals(prompt.length - 4, thinking.length);
    }

    @Test
    void budgetCutsThinkingOfARealModel() {
        // An open think block in the prompt (as Qwen3-Thinking-2507 renders it): the random-weight model never closes it.
        var request = GenerationRequest.builder()
                .rawPrompt("<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n<think>\n")
                .thinkingBudget(6).maxTokens(60).sampling(SamplingParams.greedy()).build();
        GenerationResult r = engine.generate(request);
        assertTrue(r.budgetExhausted());
        assertTrue(r.reasoning().contains("Considering the limited time by the user"), r.reasoning());
        assertTrue(r.thinkingTokens() > 6 && r.thinkingTokens() < 6 + 30, "thinking tokens " + r.thinkingTokens());
        assertTrue(r.answerTokens() > 0, "the model went on to answer");
        assertEquals(r.outputTokens().length - r.thinkingTokens()
                - (r.finishReason() == FinishReason.LENGTH ? 0 : 1), r.answerTokens());

        var unlimited = engine.generate(request.withThinkingBudget(GenerationRequest.UNLIMITED));
        assertTrue(!unlimited.budgetExhausted() && unlimited.answerTokens() == 0 && unlimited.finishReason() == FinishReason.LENGTH,
                "without a budget the never-closing thought runs to max tokens");
    }

    @Test
    void overLongPromptsAreRejectedWithTheirLength() {
        int[] prompt = new int[engine.contextLength()];
        var e = assertThrows(PromptTooLongException.class, () -> engine.submit(greedy(prompt, 1), Long.MAX_VALUE));
        assertTrue(e.getMessage().contains(prompt.length + " tokens"), e.getMessage());
    }

    @Test
    void earliestDeadlineIsServedFirstWhenOnlyOneFits() {
        var options = new EngineOptions(2, 1, 512, 0);
        try (var single = Qwen3Engine.open(Fixtures.MOE.toString(), options)) {
            List<Integer> finished = Collections.synchronizedList(new ArrayList<>());
            // a long blocker first, so the others queue up behind it; greedy is deterministic, so a
            // prompt that runs to max tokens once (no end token on the way) does so again
            int[] blockerPrompt = {1, 2, 3};
            assertEquals(FinishReason.LENGTH, single.generate(greedy(blockerPrompt, 1500)).finishReason(),
                    "the blocker must not stop early");
            long now = System.nanoTime();
            // the blocker has the earliest deadline, so it is admitted first however the scheduler wakes;
            // every deadline lies far beyond the test's run: a request that can no longer make its
            // deadline is admitted after those that still can, which is not what this test is about
            var blocker = single.submit(greedy(blockerPrompt, 1500), now + 50_000_000_000L);
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            long[] deadlines = {now + 900_000_000_000L, now + 100_000_000_000L, now + 500_000_000_000L};
            for (int i = 0; i < deadlines.length; i++) {
                int id = i;
                futures.add(single.submit(greedy(new int[] {4, 5, 6 + i}, 3), deadlines[i])
                        .whenComplete((r, t) -> finished.add(id)));
            }
            blocker.join();
            futures.forEach(CompletableFuture::join);
            assertEquals(List.of(1, 2, 0), finished, "completion order follows the deadlines");
        }
    }

    @Test
    void aRequestThatCanNoLongerMakeItWaitsBehindOneThatCan() {
        var options = new EngineOptions(2, 1, 512, 0);
        try (var single = Qwen3Engine.open(Fixtures.MOE.toString(), options)) {
            List<String> finished = Collections.synchronizedList(new ArrayList<>());
            long now = System.nanoTime();
            var blocker = single.submit(greedy(new int[] {1, 2, 3}, 300), now + 100_000_000_000L);
            var late = single.submit(greedy(new int[] {4, 5, 6}, 3), now - 1).whenComplete((r, t) -> finished.add("late"));
            var feasible = single.submit(greedy(new int[] {4, 5, 7}, 3), now + 200_000_000_000L)
                    .whenComplete((r, t) -> finished.add("feasible"));
            blocker.join();
            late.join();
            feasible.join();
            assertEquals(List.of("feasible", "late"), finished, "the earliest deadline, already missed, goes last");
        }
    }

    @Test
    void metricsReportMeasuredStepCosts() {
        engine.generate(greedy(new int[] {10, 11, 12, 13}, 8));
        EngineMetrics m = engine.metrics();
        assertTrue(m.decodeStepSeconds(1) > 0);
        assertTrue(m.prefillSecondsPerToken() > 0);
        assertTrue(m.generatedTokens() >= 8);
        assertTrue(m.tokensPerSecond() > 0);
        // the MoE fixture's experts in one shard per kernel thread; each token of the last step went to top-2 experts in 2 layers
        long[] tokensPerShard = m.expertShards().tokensPerShard();
        assertEquals(2, tokensPerShard.length);
        long routed = Arrays.stream(tokensPerShard).sum();
        assertTrue(routed > 0 && routed % 4 == 0, m.expertShards().toString());
        assertTrue(m.expertShardImbalance() >= 1 && m.expertShardImbalance() <= 2, m.expertShards().toString());
    }
}
