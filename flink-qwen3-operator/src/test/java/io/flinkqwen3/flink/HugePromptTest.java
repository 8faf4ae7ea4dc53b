package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.junit.jupiter.api.Test;

/**
 * Prompts far beyond the context are dead letters found without tokenizing them whole: by their
 * length alone, or after the context's worth of tokens.
 *
 * <p>Measured on a shared 2-core machine (not asserted; the test prints its own): tokenizing 5
 * million characters whole took 2.4 s, and the operator did it twice per record (counting, then
 * submitting); now that record is a dead letter in 0.2 s (rendering the template and the JSON
 * payload), 15,000 words (118,000 characters, 103,000 tokens) in 0.08 s, a 100,000-letter word in
 * 0.04 s; the capped tokenizations themselves take 0 to 16 ms.
 */
class HugePromptTest {
    @Test
    void hugePromptsAreDeadLettersWithoutTokenizingThemWhole() throws Exception {
        var words = new StringBuilder();
        for (int i = 0; i < 15_000; i++) {
            words.append(" w").append(i * 7919L % 1_000_003);
        }
        Map<String, String> prompts = Map.of(
                "five-million-chars", "a".repeat(5_000_000),
                "many-words", words.toString(),
                "one-huge-word", "x".repeat(100_000));
        try (var h = Qwen3InferenceOperatorTest.harness(Qwen3InferenceOperatorTest.options())) { // max-context 256
            h.initializeEmptyState();
            h.open();
            for (var p : prompts.entrySet()) {
                long start = System.nanoTime();
                h.processElement(PromptRecord.of(p.getKey(), p.getValue()), 0);
                System.out.printf("%s: %d chars, dead letter in %.3f s%n", p.getKey(), p.getValue().length(),
                        (System.nanoTime() - start) / 1e9);
            }
            h.processElement(PromptRecord.of("good", "Hello"), 0);
            h.endInput();
            Map<String, String> reasons = new HashMap<>();
            h.getSideOutput(Qwen3Inference.DEAD_LETTERS).stream().map(StreamRecord::getValue)
                    .forEach(d -> reasons.put(d.id, d.reason));
            assertEquals(prompts.keySet(), reasons.keySet());
            String template = "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n";
            assertEquals("prompt has more than 255 tokens (" + (5_000_000 + template.length()) + " characters with the chat"
                    + " template: too long for 255 tokens of any text, not tokenized), the context length is 256: shorten"
                    + " the prompt or raise the context length", reasons.get("five-million-chars"));
            assertTrue(reasons.get("many-words").startsWith("prompt has more than 255 tokens (" + (words.length() + template.length())
                    + " characters with the chat template: tokenizing stopped there)"), reasons.get("many-words"));
            assertTrue(reasons.get("one-huge-word").startsWith("prompt has more than 255 tokens (" + (100_000 + template.length())
                    + " characters with the chat template: tokenizing stopped there)"), reasons.get("one-huge-word"));
            assertEquals(List.of("good"), h.extractOutputValues().stream().map(c -> c.id).toList());
        }
    }
}
