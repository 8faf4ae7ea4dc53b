package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.testing.Fixtures;
import io.flinkqwen3.tokenizer.ChatTemplate;
import io.flinkqwen3.tokenizer.ChatMessage;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Classification by label scoring on the dense fixture (fp32 KV in the engine, so it compares at
 * 1e-4): label probabilities against a plain full forward pass of prompt + label for each label,
 * without and with thinking first. The prefix cache: {@link PrefixCacheTest}.
 */
class LabelScoringTest {
    static Qwen3Engine engine;
    static Qwen3Model model;
    static final List<String> LABELS = List.of("positive", "negative", "neutral", "mixed feelings about it", "spam");

    @BeforeAll
    static void open() {
        // 4 sequences (the warm-up runs batches of up to 8): the test runs one request at a time
        engine = Qwen3Engine.open(Fixtures.DENSE.toString(), new EngineOptions(2, 4, 512, 0).withKvCache(0, KvBlockPool.Precision.F32, true));
        model = engine.model(); // the reference passes run between requests, while the engine's scheduler waits
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    /** Summed log-probabilities of each label's tokens after the prompt, each from one full forward pass, softmaxed. */
    static double[] independent(int[] prompt, List<String> labels) {
        int vocab = model.config().vocabSize();
        double[] scores = new double[labels.size()];
        for (int i = 0; i < labels.size(); i++) {
            int[] label = engine.tokenizer().encode(labels.get(i));
            int[] all = new int[prompt.length + label.length];
            System.arraycopy(prompt, 0, all, 0, prompt.length);
            System.arraycopy(label, 0, all, prompt.length, label.length);
            float[] logits = model.prefill(all, model.newCache(all.length), true, ForwardObserver.NONE);
            for (int j = 0; j < label.length; j++) {
                int off = (prompt.length + j - 1) * vocab;
                scores[i] += logits[off + label[j]] - Kernels.logSumExp(logits, off, vocab);
            }
        }
        double max = java.util.Arrays.stream(scores).max().orElseThrow(), sum = 0;
        for (double s : scores) {
            sum += Math.exp(s - max);
        }
        for (int i = 0; i < scores.length; i++) {
            scores[i] = Math.exp(scores[i] - max) / sum;
        }
        return scores;
    }

    private static GenerationRequest classify(List<ChatMessage> messages, boolean thinking, int budget) {
        return GenerationRequest.builder().messages(messages).enableThinking(thinking).thinkingBudget(budget).maxTokens(64)
                .sampling(SamplingParams.greedy()).labels(LABELS).build();
    }

    @Test
    void labelProbabilitiesEqualFullForwardPassesOfPromptPlusLabel() {
        var messages = List.of(ChatMessage.system("Classify the sentiment of the review."), ChatMessage.user("The soup was cold."));
        GenerationResult r = engine.generate(classify(messages, false, 0));
        int[] prompt = engine.tokenizer().encode(ChatTemplate.render(messages, true, false));
        double[] expected = independent(prompt, LABELS);
        Map<String, Double> p = r.labelProbabilities();
        assertEquals(LABELS, List.copyOf(p.keySet()));
        int best = 0;
        for (int i = 0; i < LABELS.size(); i++) {
            assertEquals(expected[i], p.get(LABELS.get(i)), 1e-4, LABELS.get(i));
            best = expected[i] > expected[best] ? i : best;
        }
        assertEquals(LABELS.get(best), r.label());
        assertEquals(r.label(), r.answer());
        assertEquals(0, r.answerTokens());
        assertEquals(1.0, p.values().stream().mapToDouble(Double::doubleValue).sum(), 1e-9);
    }

    @Test
    void withThinkingTheLabelsAreScoredAfterTheThinkBlock() {
        // a prompt that opens the think block (as a thinking model's first token would): the fixture
        // model thinks until its budget, then Qwen's early-stop text closes the block with </think>\n\n
        String prompt = ChatTemplate.render(List.of(ChatMessage.user("Is this spam? Buy cheap watches now.")), true, true) + "<think>\n";
        int budget = 8;
        GenerationResult r = engine.generate(GenerationRequest.builder().rawPrompt(prompt).enableThinking(true)
                .thinkingBudget(budget).maxTokens(64).sampling(SamplingParams.greedy()).labels(LABELS).build());
        int[] thought = r.outputTokens(); // thinking, then </think> and the template's "\n\n"
        int close = engine.tokenizer().tokenId(ChatTemplate.THINK_CLOSE);
        assertTrue(java.util.Arrays.stream(thought).anyMatch(t -> t == close), "the think block is closed");
        assertTrue(r.budgetExhausted());
        assertEquals(thought.length, r.thinkingTokens());
        int[] ids = engine.tokenizer().encode(prompt);
        int[] continued = new int[ids.length + thought.length];
        System.arraycopy(ids, 0, continued, 0, ids.length);
        System.arraycopy(thought, 0, continued, ids.length, thought.length);
        double[] expected = independent(continued, LABELS);
        for (int i = 0; i < LABELS.size(); i++) {
            assertEquals(expected[i], r.labelProbabilities().get(LABELS.get(i)), 1e-4, LABELS.get(i));
        }
        assertEquals(textBefore(thought, close), r.reasoning());
        // no budget: max tokens cuts the thought and </think> closes it; its text is still the reasoning
        r = engine.generate(GenerationRequest.builder().rawPrompt(prompt).enableThinking(true).thinkingBudget(-1).maxTokens(12)
                .sampling(SamplingParams.greedy()).labels(LABELS).build());
        assertFalse(r.budgetExhausted());
        assertEquals(r.outputTokens().length, r.thinkingTokens());
        assertEquals(textBefore(r.outputTokens(), close), r.reasoning());
        assertFalse(r.reasoning().isEmpty());
    }

    /** The decoded text of {@code tokens} before the first {@code close}. */
    private static String textBefore(int[] tokens, int close) {
        int end = 0;
        while (tokens[end] != close) {
            end++;
        }
        return ChatTemplate.strip(engine.tokenizer().decode(java.util.Arrays.copyOf(tokens, end), true));
    }

    @Test
    void labelsTheRequestCannotTakeAreRefusedWithTheReason() {
        var messages = List.of(ChatMessage.user("x"));
        var e = assertThrows(IllegalArgumentException.class, () -> GenerationRequest.builder().messages(messages)
                .labels(List.of("a", "a")).build());
        assertEquals("labels[1] 'a' is a duplicate", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GenerationRequest.builder().messages(messages).labels(List.of("a")).build());
        assertTrue(e.getMessage().contains("between 2 and 512 labels, got 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GenerationRequest.builder().messages(messages)
                .labels(List.of("a", "")).build());
        assertEquals("labels[1] is empty", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GenerationRequest.builder().messages(messages)
                .labels(List.of("a", " \t")).build());
        assertEquals("labels[1] is blank (only whitespace)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> engine.submit(GenerationRequest.builder().messages(messages)
                .labels(List.of("a", "word ".repeat(40))).build(), Long.MAX_VALUE));
        assertTrue(e.getMessage().startsWith("labels[1] 'word word"), e.getMessage());
    }
}
