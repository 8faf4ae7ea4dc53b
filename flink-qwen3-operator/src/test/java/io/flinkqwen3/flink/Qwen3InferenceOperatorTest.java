package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.runtime.GenerationRequest;
import io.flinkqwen3.runtime.Qwen3Engine;
import io.flinkqwen3.testing.Fixtures;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.apache.flink.api.common.functions.util.ListCollector;
import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.tasks.mailbox.TaskMailbox;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.junit.jupiter.api.Test;

/** The operator in Flink's test harness, on the real MoE fixture model. */
class Qwen3InferenceOperatorTest {

    static Configuration options() {
        var o = new Configuration();
        o.set(Qwen3Options.MODEL, Fixtures.MOE.toString());
        o.set(Qwen3Options.THREADS, 2);
        o.set(Qwen3Options.DEFAULT_MAX_TOKENS, 6);
        o.set(Qwen3Options.MAX_CONTEXT, 256);
        return o;
    }

    static OneInputStreamOperatorTestHarness<PromptRecord, CompletionRecord> harness(Configuration options) throws Exception {
        var h = new OneInputStreamOperatorTestHarness<>(new Qwen3InferenceOperatorFactory(options),
                TypeInformation.of(PromptRecord.class).createSerializer(new SerializerConfigImpl()));
        h.setup(TypeInformation.of(CompletionRecord.class).createSerializer(new SerializerConfigImpl()));
        return h;
    }

    /** Runs completion mails until the harness has emitted n completions. */
    static void awaitCompletions(OneInputStreamOperatorTestHarness<PromptRecord, CompletionRecord> h, int n) throws Exception {
        while (h.extractOutputValues().size() < n) {
            h.getTaskMailbox().take(TaskMailbox.MIN_PRIORITY).run();
        }
    }

    static Map<String, Integer> countIds(List<CompletionRecord> out) {
        return out.stream().collect(Collectors.toMap(c -> c.id, c -> 1, Integer::sum));
    }

    @Test
    void inFlightRequestsSurviveACheckpointAndRestoreExactlyOnce() throws Exception {
        List<CompletionRecord> emitted = new ArrayList<>();
        OperatorSubtaskState checkpoint;
        try (var first = harness(options())) {
            first.initializeEmptyState();
            first.open();
            for (int i = 0; i < 3; i++) {
                first.processElement(PromptRecord.of("p" + i, "Question number " + i), i);
            }
            awaitCompletions(first, 3);
            emitted.addAll(first.extractOutputValues());
            for (int i = 3; i < 6; i++) {
                first.processElement(PromptRecord.of("p" + i, "Question number " + i), i);
            }
            // three prompts are in flight now: the checkpoint must carry them
            checkpoint = first.snapshot(1, 1);
            // completions emitted after the checkpoint are lost with the failure (the transactional sink aborts them)
        }
        try (var restored = harness(options())) {
            restored.initializeState(checkpoint);
            restored.open();
            restored.endInput();
            emitted.addAll(restored.extractOutputValues());
        }
        Map<String, Integer> counts = countIds(emitted);
        assertEquals(6, counts.size(), counts.toString());
        counts.forEach((id, n) -> assertEquals(1, n, id + " completed " + n + " times"));
        for (CompletionRecord c : emitted) {
            assertTrue(c.promptTokens > 0 && c.answerTokens + c.thinkingTokens > 0, c.toString());
            assertTrue(c.slaMet, "default SLA of 30 s is met: " + c);
        }
    }

    @Test
    void badRecordsGoToTheDeadLetterOutputAndTheRestIsAnswered() throws Exception {
        try (var h = harness(options())) {
            h.initializeEmptyState();
            h.open();
            h.processElement(PromptRecord.undecodable(new byte[] {9, 9}, "invalid Avro prompt: boom"), 0);
            h.processElement(PromptRecord.of("no-prompt", null), 0);
            h.processElement(PromptRecord.of("negative", "hi").withSlaMs(-3), 0);
            var unknown = PromptRecord.of("unknown-option", "hi");
            unknown.options = new HashMap<>(Map.of("colour", "blue"));
            h.processElement(unknown, 0);
            h.processElement(PromptRecord.of("too-long", "word ".repeat(400)), 0);
            h.processElement(PromptRecord.of("good", "Hello"), 0);
            h.endInput();
            var dead = h.getSideOutput(Qwen3Inference.DEAD_LETTERS).stream().map(StreamRecord::getValue).toList();
            Map<String, String> reasons = new HashMap<>();
            dead.forEach(d -> reasons.put(String.valueOf(d.id), d.reason));
            assertEquals(5, dead.size(), reasons.toString());
            assertTrue(reasons.get("null").contains("invalid Avro prompt"));
            assertTrue(reasons.get("no-prompt").startsWith("missing prompt"));
            assertTrue(reasons.get("negative").startsWith("negative sla_ms"));
            assertTrue(reasons.get("unknown-option").startsWith("unknown option 'colour'"));
            assertTrue(reasons.get("too-long").contains("context length is 256"), reasons.get("too-long"));
            assertEquals(List.of("good"), h.extractOutputValues().stream().map(c -> c.id).toList());
            assertEquals(2, dead.get(0).payload.length, "raw bytes kept");
        }
    }

    @Test
    void orderedOutputFollowsInputOrderAndBackpressureBoundsInFlight() throws Exception {
        var o = options();
        o.set(Qwen3Options.ORDERED, true);
        o.set(Qwen3Options.MAX_IN_FLIGHT, 2);
        try (var h = harness(o)) {
            h.initializeEmptyState();
            h.open();
            var op = (Qwen3InferenceOperator) h.getOneInputOperator();
            for (int i = 0; i < 6; i++) {
                var r = PromptRecord.of("o" + i, "Say something " + i);
                r.maxTokens = i % 2 == 0 ? 12 : 2; // later records finish first
                h.processElement(r, i);
                assertTrue(op.inFlightCount() <= 2, "in flight " + op.inFlightCount());
            }
            h.endInput();
            assertEquals(List.of("o0", "o1", "o2", "o3", "o4", "o5"), h.extractOutputValues().stream().map(c -> c.id).toList());
        }
    }

    @Test
    void lateRecordsAreAnsweredWithoutThinkingAndFlagged() throws Exception {
        try (var h = harness(options())) {
            h.initializeEmptyState();
            h.open();
            var late = PromptRecord.of("late", "hi");
            late.deadlineMs = System.currentTimeMillis() - 1000;
            h.processElement(late, 0);
            var relaxed = PromptRecord.of("forced", "hi");
            relaxed.thinkingBudget = 3;
            h.processElement(relaxed, 0);
            h.endInput();
            Map<String, CompletionRecord> byId = new HashMap<>();
            h.extractOutputValues().forEach(c -> byId.put(c.id, c));
            assertEquals(0, byId.get("late").thinkingBudget);
            assertTrue(!byId.get("late").slaMet);
            assertEquals(3, byId.get("forced").thinkingBudget);
        }
    }

    @Test
    void fourOperatorsShareOneEngineThatClosesAfterTheLastRelease() throws Exception {
        int before = TaskManagerEngines.enginesOpenedSinceStart();
        List<OneInputStreamOperatorTestHarness<PromptRecord, CompletionRecord>> operators = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            var h = harness(options());
            h.initializeEmptyState();
            h.open();
            operators.add(h);
        }
        assertEquals(before + 1, TaskManagerEngines.enginesOpenedSinceStart(), "one engine opened for four operators");
        assertEquals(1, TaskManagerEngines.openEngines());
        Qwen3Engine engine = TaskManagerEngines.acquire(Fixtures.MOE.toString(),
                new io.flinkqwen3.runtime.EngineOptions(2, 32, 512, 256));
        assertEquals(5, TaskManagerEngines.references(engine), "the four operators and this test hold it");
        TaskManagerEngines.release(engine);
        for (var h : operators) {
            h.processElement(PromptRecord.of("x", "hello"), 0);
            h.endInput();
            assertEquals(1, h.extractOutputValues().size());
        }
        for (var h : operators) {
            h.close();
        }
        assertEquals(0, TaskManagerEngines.openEngines());
        assertThrows(IllegalStateException.class,
                () -> engine.submit(GenerationRequest.builder().user("x").build(), Long.MAX_VALUE), "closed after the last release");
    }

    /** Bytes as the Kafka source hands them over: decoded, or an undecodable record carrying its error. */
    static List<PromptRecord> fromKafka(List<String> keys, List<byte[]> values) {
        var deserializer = new Qwen3Kafka.PromptDeserializer();
        List<PromptRecord> records = new ArrayList<>();
        for (int i = 0; i < keys.size(); i++) {
            deserializer.deserialize(new ConsumerRecord<>("prompts", 0, i, keys.get(i).getBytes(StandardCharsets.UTF_8), values.get(i)),
                    new ListCollector<>(records));
        }
        return records;
    }

    @Test
    void poisonPillsAreDeadLettersWithTheirTimestampAndCheckpointsStillWork() throws Exception {
        List<String> keys = new ArrayList<>();
        List<byte[]> values = new ArrayList<>();
        Map<String, String> expectedReason = new HashMap<>();
        for (var pill : PoisonPills.all()) {
            keys.add(pill.id());
            values.add(pill.value());
            expectedReason.put(pill.id(), pill.reason());
        }
        keys.add("tombstone");
        values.add(null);
        expectedReason.put("tombstone", "empty record");
        List<String> good = new ArrayList<>();
        for (var g : PoisonPills.extremes()) {
            keys.add(g.id());
            values.add(g.value());
            good.add(g.id());
        }
        List<PromptRecord> records = fromKafka(keys, values);
        assertEquals(keys.size(), records.size());
        var o = options();
        o.set(Qwen3Options.MAX_IN_FLIGHT, 64);
        OperatorSubtaskState checkpoint;
        try (var h = harness(o)) {
            h.initializeEmptyState();
            h.open();
            for (int i = 0; i < records.size(); i++) {
                h.processElement(records.get(i), 1000 + i);
            }
            checkpoint = h.snapshot(1, 1); // every good record is in flight, in Flink's serializer
            h.endInput();
            Map<String, StreamRecord<DeadLetter>> dead = new HashMap<>();
            h.getSideOutput(Qwen3Inference.DEAD_LETTERS).forEach(d -> dead.put(d.getValue().id, d));
            assertEquals(expectedReason.keySet(), dead.keySet());
            expectedReason.forEach((id, reason) -> {
                StreamRecord<DeadLetter> d = dead.get(id);
                assertTrue(d.getValue().reason.contains(reason), id + ": " + d.getValue().reason);
                assertEquals(1000 + keys.indexOf(id), d.getTimestamp(), id + " keeps its timestamp");
                byte[] sent = values.get(keys.indexOf(id));
                boolean byEngine = PoisonPills.all().stream().anyMatch(p -> p.id().equals(id) && p.needsEngine());
                if (sent != null && !byEngine) { // the engine's refusals carry the decoded record as JSON
                    assertTrue(Arrays.equals(sent, d.getValue().payload), id + ": the raw bytes are the payload");
                }
                assertTrue(RecordCodec.encodeDeadLetterAvro(d.getValue()).length > 0);
            });
            assertEquals(new TreeSet<>(good), new TreeSet<>(countIds(h.extractOutputValues()).keySet()));
            CompletionRecord json = h.extractOutputValues().stream().filter(c -> c.id.equals("good-json-schema")).findFirst().orElseThrow();
            assertTrue(RecordCodec.JSON.readTree(json.answer).path("ok").isBoolean(), "answer under its json_schema: " + json.answer);
        }
        try (var restored = harness(o)) {
            restored.initializeState(checkpoint);
            restored.open();
            restored.endInput();
            assertEquals(new TreeSet<>(good), new TreeSet<>(countIds(restored.extractOutputValues()).keySet()));
            for (var c : restored.getOutput()) {
                var r = (StreamRecord<?>) c;
                String id = ((CompletionRecord) r.getValue()).id;
                assertEquals(1000 + keys.indexOf(id), r.getTimestamp(), id + " restored with its timestamp");
            }
        }
    }
}
