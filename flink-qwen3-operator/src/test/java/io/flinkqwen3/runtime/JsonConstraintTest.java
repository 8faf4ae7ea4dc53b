package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.SchemaCheck;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Constrained decoding over the real Qwen3 vocabulary, driven by random logits (every token
 * gets a chance, multi-byte tokens that span several grammar states included): the answer must
 * parse and validate whatever the logits say, however short max_tokens is.
 */
class JsonConstraintTest {
    static final int VOCAB = GenerationTest.VOCAB;
    static Qwen3Tokenizer tokenizer;
    static Generation.SpecialTokens special;

    @BeforeAll
    static void load() {
        GenerationTest.load();
        tokenizer = GenerationTest.tokenizer;
        special = GenerationTest.special;
    }

    static final List<String> SCHEMAS = List.of(
            JsonSchemaGrammarTest.PERSON, JsonSchemaGrammarTest.ORDER, JsonSchemaGrammarTest.TAGS);

    static JsonConstraint constraint(String schema) {
        return new JsonConstraint(JsonSchemaGrammar.compile(schema), tokenizer, special.stop());
    }

    static Generation start(GenerationRequest request, JsonConstraint c, long seed) {
        int[] prompt = tokenizer.encode("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
        return new Generation(request, prompt, 4096, special, tokenizer,
                new SamplingParams(1f, 0, 1f, 0f, 0f, seed), 0, 0, c);
    }

    /** Runs to the end on random logits; the stop tokens and think tags get a boost so that they are tried often. */
    static GenerationResult run(Generation g, SplittableRandom random) {
        while (!g.done()) {
            float[] logits = new float[VOCAB];
            for (int i = 0; i < VOCAB; i++) {
                logits[i] = (float) random.nextGaussian() * 3;
            }
            for (int t : new int[] {151645, 151643, 151667, 151668}) {
                logits[t] = 12f;
            }
            g.takePending(g.pendingCount());
            g.sampleFrom(logits, 0, VOCAB);
        }
        return g.result();
    }

    @Test
    void randomLogitsGiveValidJsonForEverySchemaAndLimit() {
        var random = new SplittableRandom(11);
        for (String schema : SCHEMAS) {
            JsonConstraint c = constraint(schema);
            for (int seed = 0; seed < 8; seed++) {
                int maxTokens = seed % 3 == 0 ? c.minTokens() : c.minTokens() + random.nextInt(60);
                var request = GenerationRequest.builder().user("hi").enableThinking(false).maxTokens(maxTokens).build();
                GenerationResult r = run(start(request, c, seed), random);
                assertNull(SchemaCheck.problem(schema, r.answer()), r.answer());
                assertEquals(FinishReason.STOP, r.finishReason(), r.answer());
                assertTrue(r.outputTokens().length <= maxTokens);
                assertEquals(0, r.thinkingTokens());
                assertEquals(r.outputTokens().length - 1, r.answerTokens());
            }
        }
    }

    @Test
    void thinkingStaysFreeAndIsClosedInTimeForTheAnswer() {
        var random = new SplittableRandom(5);
        JsonConstraint c = constraint(JsonSchemaGrammarTest.PERSON);
        int early = special.earlyStop().length;
        for (int seed = 0; seed < 8; seed++) {
            int maxTokens = c.minTokens() + 1 + early + random.nextInt(40);
            var request = GenerationRequest.builder().user("hi").maxTokens(maxTokens).build();
            GenerationResult r = run(start(request, c, seed), random);
            assertNull(SchemaCheck.problem(JsonSchemaGrammarTest.PERSON, r.answer()), r.answer());
            assertTrue(r.outputTokens().length <= maxTokens);
            assertEquals(r.outputTokens().length - 1, r.thinkingTokens() + r.answerTokens());
            if (r.thinkingTokens() > 0) {
                assertEquals(151667, r.outputTokens()[0]); // the boosted <think> opened it; end tokens could not close it
            }
        }
    }

    @Test
    void maxTokensBelowTheShortestAnswerIsRefusedBeforeRunning() {
        JsonConstraint c = constraint(JsonSchemaGrammarTest.PERSON);
        assertEquals("{\"name\":\"\",\"age\":0}".length() + 1, c.minTokens());
        var e = assertThrows(IllegalArgumentException.class, () -> start(GenerationRequest.builder().user("hi")
                .enableThinking(false).maxTokens(10).build(), c, 0));
        assertEquals("max_tokens 10 is too small for the JSON schema: its shortest answer takes 20 tokens with the end token"
                + " (at least 20)", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> start(GenerationRequest.builder().user("hi")
                .maxTokens(30).build(), c, 0));
        assertTrue(e.getMessage().contains("plus " + (1 + special.earlyStop().length) + " to open and close the thinking"), e.getMessage());
    }

    @Test
    void masksAreCachedPerStateAndApplyOnlyWhatTheGrammarAllows() {
        JsonConstraint c = constraint(JsonSchemaGrammarTest.PERSON);
        TokenMask first = c.mask(c.start(), 1000);
        assertTrue(first.allows(tokenizer.tokenId("{\"")), "{\" is one token and a valid start");
        assertFalse(first.allows(tokenizer.tokenId("[")));
        assertFalse(first.allows(151645), "no end token before the JSON is complete");
        assertFalse(first.allows(151667), "no think tag inside the answer");
        assertTrue(first == c.mask(c.start(), 1000), "cached");
        int inName = c.grammar().walk(c.start(), "{\"name\":\"A".getBytes());
        TokenMask string = c.mask(inName, 1000);
        assertTrue(string.count() > 100_000, "nearly every token fits inside a string: " + string.count());
        assertTrue(string.allows(tokenizer.tokenId("\",\"")), "a token that closes the string and opens the next key");
        float[] logits = new float[VOCAB];
        string.apply(logits, 0, VOCAB);
        int allowed = 0;
        for (int i = 0; i < VOCAB; i++) {
            allowed += logits[i] == 0f ? 1 : 0;
        }
        assertEquals(string.count(), allowed);
        // with only the minimum left, the string must close now: only tokens that keep the completion in reach
        int left = c.grammar().distance(inName) + 1;
        TokenMask tight = c.mask(inName, left);
        assertTrue(tight.count() < string.count() && tight.allows(tokenizer.tokenId("\"")), "closing quote still allowed");
        assertFalse(tight.allows(tokenizer.tokenId("abc")));
    }
}
