package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.Fixtures;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The request state machine driven token by token (the "model" here is a one-hot logit vector per
 * step, so every branch of thinking, budget and stopping is reached deterministically).
 */
class GenerationTest {
    static final int VOCAB = 151936;
    static Qwen3Tokenizer tokenizer;
    static Generation.SpecialTokens special;

    @BeforeAll
    static void load() {
        tokenizer = Qwen3Tokenizer.load(Fixtures.SHARED.resolve("qwen3-tokenizer/tokenizer.json"));
        special = new Generation.SpecialTokens(Set.of(151645, 151643), 151667, 151668,
                tokenizer.encode(Generation.EARLY_STOP_TEXT));
    }

    static Generation start(GenerationRequest request) {
        int[] prompt = tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
        return new Generation(request, prompt, KvCache.standalone(1, 1, 1, 4096, KvBlockPool.Precision.F32), special, tokenizer, SamplingParams.greedy(), 0, 0);
    }

    /** Feeds the tokens of text one by one as if the model chose them; returns how many were consumed. */
    static int emit(Generation g, int... tokens) {
        int n = 0;
        for (int t : tokens) {
            if (g.done()) {
                break;
            }
            float[] logits = new float[VOCAB];
            logits[t] = 10f;
            g.takePending(g.pendingCount());
            g.sampleFrom(logits, 0, VOCAB);
            n++;
        }
        return n;
    }

    static int[] ids(String text) {
        return tokenizer.encode(text);
    }

    static int[] concat(int[]... parts) {
        return Arrays.stream(parts).flatMapToInt(Arrays::stream).toArray();
    }

    @Test
    void thinkingIsSplitFromTheAnswerAtTheThinkTagThatEndsIt() {
        var g = start(GenerationRequest.builder().user("hi").maxTokens(100).build());
        int[] thought = concat(new int[] {151667}, ids("\nTwo plus two.\n"), new int[] {151668});
        emit(g, concat(thought, ids("\n\nFour."), new int[] {151645}));
        GenerationResult r = g.result();
        assertEquals("Two plus two.", r.reasoning());
        assertEquals("Four.", r.answer());
        assertEquals(thought.length, r.thinkingTokens());
        assertEquals(ids("\n\nFour.").length, r.answerTokens());
        assertEquals(FinishReason.STOP, r.finishReason());
        assertFalse(r.budgetExhausted());
    }

    @Test
    void budgetInsertsQwensEarlyStopTextOnceThenTheModelAnswers() {
        int budget = 4;
        var g = start(GenerationRequest.builder().user("hi").thinkingBudget(budget).maxTokens(100).build());
        int[] rambling = concat(new int[] {151667}, ids(" a b c d e f"));
        emit(g, Arrays.copyOf(rambling, budget));
        // the budget is spent: the next model input is the last token plus the early-stop text
        assertEquals(1 + special.earlyStop().length, g.pendingCount());
        int[] pending = g.takePending(g.pendingCount());
        assertArrayEquals(special.earlyStop(), Arrays.copyOfRange(pending, 1, pending.length));
        float[] logits = new float[VOCAB];
        logits[ids("Done")[0]] = 10f;
        g.sampleFrom(logits, 0, VOCAB);
        emit(g, 151645);
        GenerationResult r = g.result();
        assertTrue(r.budgetExhausted());
        assertEquals(FinishReason.BUDGET, r.finishReason());
        int closeInText = IntStream.range(0, special.earlyStop().length).filter(i -> special.earlyStop()[i] == 151668).findFirst().orElseThrow();
        assertEquals(budget + closeInText + 1, r.thinkingTokens(), "thinking counts up to and including the inserted </think>");
        assertTrue(r.reasoning().endsWith("Considering the limited time by the user, I have to give the solution based on the thinking directly now."),
                r.reasoning());
        assertEquals("Done", r.answer());
        long inserted = IntStream.of(r.outputTokens()).filter(t -> t == 151668).count();
        assertEquals(1, inserted, "early-stop text inserted exactly once");
    }

    @Test
    void thinkingThatEndsWithinTheBudgetIsLeftAlone() {
        var g = start(GenerationRequest.builder().user("hi").thinkingBudget(50).maxTokens(100).build());
        emit(g, concat(new int[] {151667}, ids("ok"), new int[] {151668}, ids("\n\nyes"), new int[] {151645}));
        GenerationResult r = g.result();
        assertFalse(r.budgetExhausted());
        assertEquals(FinishReason.STOP, r.finishReason());
        assertEquals("yes", r.answer());
    }

    @Test
    void maxTokensEndsWithLengthAndKeepsUnclosedThinkingAsReasoning() {
        var g = start(GenerationRequest.builder().user("hi").maxTokens(5).build());
        emit(g, concat(new int[] {151667}, ids(" one two three four five six")));
        GenerationResult r = g.result();
        assertEquals(FinishReason.LENGTH, r.finishReason());
        assertEquals(5, r.outputTokens().length);
        assertEquals(5, r.thinkingTokens());
        assertEquals("", r.answer());
        assertEquals(tokenizer.decode(Arrays.copyOfRange(r.outputTokens(), 1, 5)).strip(), r.reasoning().strip());
    }

    @Test
    void stopStringsEndTheAnswerAndAreCutOff() {
        var g = start(GenerationRequest.builder().user("hi").enableThinking(false).stopStrings(List.of("END"))
                .maxTokens(100).build());
        int consumed = emit(g, concat(ids("label: positive END and more"), new int[] {151645}));
        GenerationResult r = g.result();
        assertEquals(FinishReason.STOP, r.finishReason());
        assertEquals("label: positive ", r.answer());
        assertTrue(consumed < ids("label: positive END and more").length + 1, "stopped before the rest was generated");
    }

    @Test
    void aModelThatSkipsTheThinkBlockIsAllAnswer() {
        var g = start(GenerationRequest.builder().user("hi").maxTokens(100).build());
        emit(g, concat(ids("Four."), new int[] {151645}));
        GenerationResult r = g.result();
        assertEquals("Four.", r.answer());
        assertEquals("", r.reasoning());
        assertEquals(0, r.thinkingTokens());
    }

    @Test
    void aLoweredLimitCutsTheThoughtBeforeTheNextStep() {
        var g = start(GenerationRequest.builder().user("hi").maxTokens(200).adaptiveBudget(true).answerReserveTokens(16).build());
        emit(g, concat(new int[] {151667}, ids(" a b c d e")));
        int thought = g.thinkingTokens();
        g.limitThinking(thought + 50);
        assertEquals(1, g.pendingCount(), "a limit not reached changes nothing");
        g.limitThinking(thought - 2);
        assertEquals(1 + special.earlyStop().length, g.pendingCount(), "the early-stop text goes in with the last token");
        assertFalse(g.thinking());
        emit(g, ids("Four."));
        GenerationResult r = g.result();
        assertTrue(r.budgetExhausted());
        assertTrue(r.reasoning().endsWith("I have to give the solution based on the thinking directly now."), r.reasoning());
        assertEquals("Four.", r.answer());
        // the thought ends with the early-stop text's </think> (the blank line after it counts as answer)
        assertTrue(r.thinkingTokens() > thought + 1 && r.thinkingTokens() <= thought + special.earlyStop().length, r.toString());
    }

    @Test
    void maxAnswerTokensEndsTheAnswerButNotTheThought() {
        var g = start(GenerationRequest.builder().user("hi").maxTokens(200).maxAnswerTokens(3).build());
        int[] thought = concat(new int[] {151667}, ids(" a b c d e f g"), new int[] {151668});
        emit(g, concat(thought, ids(" one two three four five")));
        GenerationResult r = g.result();
        assertEquals(FinishReason.LENGTH, r.finishReason());
        assertEquals(thought.length, r.thinkingTokens());
        assertEquals(3, r.answerTokens());
    }

    /**
     * Each output token is on exactly one side (the final end-of-turn token on neither), and each
     * text is the decoding of its side's tokens (think tags that delimit the block aside).
     */
    static void assertPartition(GenerationResult r) {
        int[] t = r.outputTokens();
        int end = t.length > 0 && special.stop().contains(t[t.length - 1]) ? t.length - 1 : t.length;
        assertEquals(end, r.thinkingTokens() + r.answerTokens(), "every token on exactly one side");
        int split = r.thinkingTokens();
        int from = split > 0 && t[0] == special.thinkOpen() ? 1 : 0;
        int to = split > from && t[split - 1] == special.thinkClose() ? split - 1 : split;
        assertEquals(tokenizer.decode(Arrays.copyOfRange(t, from, to), true).strip(), r.reasoning().strip());
        assertEquals(tokenizer.decode(Arrays.copyOfRange(t, split, end), true).strip(), r.answer().strip());
    }

    @Test
    void aStrayThinkCloseInTheAnswerStaysInTheAnswer() {
        var g = start(GenerationRequest.builder().user("hi").maxTokens(100).build());
        int[] thought = concat(new int[] {151667}, ids("\nhmm\n"), new int[] {151668});
        int[] answer = concat(ids("\n\nFour"), new int[] {151668}, ids(" really"));
        emit(g, concat(thought, answer, new int[] {151645}));
        GenerationResult r = g.result();
        assertEquals("hmm", r.reasoning());
        assertEquals("Four</think> really", r.answer());
        assertEquals(thought.length, r.thinkingTokens());
        assertEquals(answer.length, r.answerTokens());
        assertPartition(r);
    }

    @Test
    void aSecondThinkOpenIsPartOfTheReasoning() {
        var g = start(GenerationRequest.builder().user("hi").maxTokens(100).build());
        int[] thought = concat(new int[] {151667}, ids("a"), new int[] {151667}, ids("b"), new int[] {151668});
        emit(g, concat(thought, ids("\n\nc"), new int[] {151645}));
        GenerationResult r = g.result();
        assertEquals("a<think>b", r.reasoning());
        assertEquals("c", r.answer());
        assertEquals(thought.length, r.thinkingTokens());
        assertPartition(r);
    }

    @Test
    void anEndOfTurnInsideTheThinkBlockLeavesNoAnswer() {
        var g = start(GenerationRequest.builder().user("hi").maxTokens(100).build());
        int[] thought = concat(new int[] {151667}, ids(" unfinished thought"));
        emit(g, concat(thought, new int[] {151645}));
        GenerationResult r = g.result();
        assertEquals(thought.length, r.thinkingTokens(), "the end token is not thinking");
        assertEquals(0, r.answerTokens());
        assertEquals("", r.answer());
        assertEquals(" unfinished thought", r.reasoning());
        assertPartition(r);
    }

    @Test
    void aBudgetCutGivesTheTextAfterTheInsertedThinkCloseToTheAnswer() {
        var g = start(GenerationRequest.builder().user("hi").thinkingBudget(3).maxTokens(100).build());
        emit(g, Arrays.copyOf(concat(new int[] {151667}, ids(" x y z w")), 3));
        emit(g, concat(ids("Done"), new int[] {151645}));
        GenerationResult r = g.result();
        assertTrue(r.budgetExhausted());
        assertEquals("Done", r.answer());
        assertEquals(ids("\n\nDone").length, r.answerTokens(), "the early-stop text's trailing newlines and the answer");
        assertPartition(r);
    }
}
