package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.testing.Fixtures;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Comparator;
import java.util.Set;
import io.flinkqwen3.runtime.EngineOptions;
import io.flinkqwen3.runtime.GenerationResult;
import io.flinkqwen3.runtime.Qwen3Engine;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.junit.jupiter.api.Test;

/**
 * A classification job on a MiniCluster with the dense fixture model: records with labels get
 * their label and probabilities; one whose best label is below min-confidence goes to
 * LOW_CONFIDENCE; one with bad labels is a dead letter; the job answers the rest and ends.
 * min-confidence is set between the records' best probabilities as the engine alone gives them
 * (the fixture's weights are random, so no probability is known beforehand).
 */
class ClassificationJobTest {
    static final List<String> FIVE = List.of("positive", "negative", "neutral", "mixed", "unknown");

    static PromptRecord record(String id, String text, List<String> labels) {
        var r = PromptRecord.of(id, text);
        r.systemPrompt = "Classify the message.";
        r.enableThinking = false;
        r.labels = labels;
        r.attributes = new HashMap<>(Map.of("source", id));
        return r;
    }

    /** What left the operator, and by which output. */
    public static class Outcome {
        public String output;
        public CompletionRecord completion;
        public DeadLetter deadLetter;

        public Outcome() {}

        static Outcome of(String output, CompletionRecord c, DeadLetter d) {
            var o = new Outcome();
            o.output = output;
            o.completion = c;
            o.deadLetter = d;
            return o;
        }
    }

    /** Each labelled record's best probability, from the engine without Flink. */
    static Map<String, Double> bestProbabilities(List<PromptRecord> records) {
        try (var engine = Qwen3Engine.open(Fixtures.DENSE.toString(), new EngineOptions(2, 8, 512, 256))) {
            var requests = new RequestBuilder(new Configuration(), engine.model().checkpoint().generationConfig());
            Map<String, Double> best = new HashMap<>();
            for (PromptRecord r : records) {
                if (r.labels != null && RequestBuilder.validate(r) == null) {
                    GenerationResult result = engine.generate(requests.build(r, 0));
                    best.put(r.id, result.labelProbabilities().get(result.label()));
                }
            }
            return best;
        }
    }

    @Test
    void labelledOutputsLowConfidenceSideOutputAndDeadLetters() throws Exception {
        List<PromptRecord> records = List.of(
                record("yes-no", "Tell me something.", List.of("yes", "no")),
                record("colours", "Tell me something.", List.of("red", "green", "blue")),
                record("five", "The soup was cold but the staff were lovely.", FIVE),
                record("duplicate-labels", "x", List.of("spam", "spam")),
                record("free", "Hello", null));
        Map<String, Double> reference = bestProbabilities(records);
        List<String> byBest = reference.keySet().stream().sorted(Comparator.comparing(reference::get)).toList();
        String lowest = byBest.get(0);
        double gap = reference.get(byBest.get(1)) - reference.get(lowest);
        assertTrue(gap > 0.01, "the fixture gives one record a clearly lower best probability: " + reference);
        double minConfidence = reference.get(lowest) + gap / 2;

        var env = StreamExecutionEnvironment.createLocalEnvironment(1);
        var completions = Qwen3Inference.builder()
                .model(Fixtures.DENSE.toString())
                .threads(2)
                .defaultMaxTokens(4)
                .maxContext(256)
                .minConfidence(minConfidence)
                .kvCacheMemory(MemorySize.ofMebiBytes(8))
                .build()
                .apply(env.fromData(TypeInformation.of(PromptRecord.class), records.toArray(PromptRecord[]::new)));
        var outcomes = completions.map(c -> Outcome.of("main", c, null), TypeInformation.of(Outcome.class))
                .union(completions.getSideOutput(Qwen3Inference.LOW_CONFIDENCE)
                                .map(c -> Outcome.of("low", c, null), TypeInformation.of(Outcome.class)),
                        completions.getSideOutput(Qwen3Inference.DEAD_LETTERS)
                                .map(d -> Outcome.of("dead", null, d), TypeInformation.of(Outcome.class)));
        Map<String, CompletionRecord> answered = new HashMap<>();
        Map<String, CompletionRecord> unsure = new HashMap<>();
        Map<String, String> rejected = new HashMap<>();
        try (var it = outcomes.executeAndCollect("classification")) {
            it.forEachRemaining(o -> {
                switch (o.output) {
                    case "main" -> answered.put(o.completion.id, o.completion);
                    case "low" -> unsure.put(o.completion.id, o.completion);
                    default -> rejected.put(o.deadLetter.id, o.deadLetter.reason);
                }
            });
        }

        assertEquals(Map.of("duplicate-labels", "labels[1] 'spam' is a duplicate"), rejected);
        assertEquals(List.of(lowest), List.copyOf(unsure.keySet()), "below min-confidence " + minConfidence + ": " + reference);
        var labelled = new ArrayList<>(reference.keySet());
        labelled.remove(lowest);
        labelled.add("free");
        assertEquals(labelled.stream().sorted().toList(), answered.keySet().stream().sorted().toList());
        for (String id : reference.keySet()) {
            CompletionRecord c = answered.containsKey(id) ? answered.get(id) : unsure.get(id);
            List<String> labels = records.stream().filter(r -> r.id.equals(id)).findFirst().orElseThrow().labels;
            assertEquals(Set.copyOf(labels), c.labelProbabilities.keySet(), "every label: " + c);
            assertEquals(1.0, c.labelProbabilities.values().stream().mapToDouble(Double::doubleValue).sum(), 1e-6, c.toString());
            double best = Collections.max(c.labelProbabilities.values());
            assertEquals(best, c.labelProbabilities.get(c.label), c.toString());
            // bf16 KV cache either way; batches may differ, so the sums of log-probabilities may differ in the last bits
            assertEquals(reference.get(id), best, 1e-3, "the operator classifies as the engine does: " + c);
            assertEquals(c.label, c.answer, "the label is the answer, no other text");
            assertEquals(0, c.answerTokens, c.toString());
            assertEquals(Map.of("source", id), c.attributes);
        }
        CompletionRecord free = answered.get("free");
        assertNull(free.label);
        assertNull(free.labelProbabilities);
        assertTrue(free.answerTokens > 0, free.toString());
    }
}
