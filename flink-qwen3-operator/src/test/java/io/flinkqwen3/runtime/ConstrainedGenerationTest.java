package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.Fixtures;
import io.flinkqwen3.testing.SchemaCheck;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * The fixture model (random weights, real vocabulary) under JSON schemas, batched in the engine:
 * whatever it would write, every answer parses and validates, with and without thinking.
 */
class ConstrainedGenerationTest {
    @Test
    void everyAnswerOfTheRandomModelValidatesAcrossSchemasSeedsAndModes() {
        List<String> schemas = List.of(SchemaCheck.schema("person.json"), SchemaCheck.schema("order.json"), SchemaCheck.schema("tags.json"));
        try (var engine = Qwen3Engine.open(Fixtures.DENSE.toString(), EngineOptions.defaults().withThreads(2))) {
            record Run(String schema, boolean thinking, long seed, CompletableFuture<GenerationResult> result) {}
            List<Run> runs = new ArrayList<>();
            for (String schema : schemas) {
                for (long seed = 0; seed < 4; seed++) {
                    boolean thinking = seed % 2 == 1;
                    // thinking: the prompt opens the think block (random weights would hardly ever pick <think> themselves
                    // and never </think>), so the engine must close it in time for the schema's answer
                    var request = GenerationRequest.builder().rawPrompt("<|im_start|>user\nExtract the fields from: order 17 for "
                            + "ann@example.com<|im_end|>\n<|im_start|>assistant\n" + (thinking ? "<think>\n" : "<think>\n\n</think>\n\n"))
                            .enableThinking(thinking).maxTokens(thinking ? 110 : 80).jsonSchema(schema)
                            .sampling(new SamplingParams(1f, 0, 1f, 0f, 0f, seed)).build();
                    runs.add(new Run(schema, thinking, seed, engine.submit(request, Long.MAX_VALUE)));
                }
            }
            for (Run run : runs) {
                GenerationResult r = run.result().join();
                String where = "seed " + run.seed() + (run.thinking() ? " thinking" : "") + ": " + r.answer();
                assertNull(SchemaCheck.problem(run.schema(), r.answer()), where);
                assertEquals(FinishReason.STOP, r.finishReason().equals(FinishReason.BUDGET) ? FinishReason.STOP : r.finishReason(), where);
                assertEquals(r.outputTokens().length - 1, r.thinkingTokens() + r.answerTokens(), where);
                if (run.thinking()) {
                    assertTrue(r.thinkingTokens() > 0 && r.budgetExhausted(), "thought, then was cut for the answer: " + where);
                } else {
                    assertEquals(0, r.thinkingTokens(), where);
                }
            }
        }
    }
}
