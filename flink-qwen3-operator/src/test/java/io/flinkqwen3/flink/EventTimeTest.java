package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import org.apache.flink.api.common.serialization.SerializerConfigImpl;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.streaming.api.datastream.AsyncDataStream.OutputMode;
import org.apache.flink.streaming.api.functions.async.AsyncFunction;
import org.apache.flink.streaming.api.operators.async.AsyncWaitOperatorFactory;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.util.function.SerializableSupplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Event time through the operator, compared element by element with Flink's AsyncWaitOperator fed
 * the same input (its async function answers at once, so its output is the reference order).
 */
class EventTimeTest {
    static final TypeSerializer<PromptRecord> IN = TypeInformation.of(PromptRecord.class).createSerializer(new SerializerConfigImpl());
    /** The test clock (epoch millis) of the Qwen3 operators. */
    static final AtomicLong NOW = new AtomicLong(1_000_000);

    /** An input element: a prompt (with max_tokens, so that later ones can finish first) or a watermark. */
    sealed interface In permits Prompt, Mark {}

    record Prompt(String id, Long timestamp, int maxTokens) implements In {}

    record Mark(long timestamp) implements In {}

    /** Records in flight across watermarks; r2 and r5 finish before the records ahead of them. */
    static final List<In> INPUT = List.of(
            new Prompt("r1", 1000L, 10), new Prompt("r2", 2000L, 1), new Mark(5000),
            new Prompt("r3", 6000L, 6), new Mark(7000), new Mark(8000),
            new Prompt("r4", null, 8), new Prompt("r5", 9000L, 1), new Prompt("r6", 9500L, 4), new Mark(10000),
            new Prompt("r7", 12000L, 2));

    static OneInputStreamOperatorTestHarness<PromptRecord, CompletionRecord> qwen3(OutputMode mode) throws Exception {
        Configuration o = Qwen3InferenceOperatorTest.options();
        o.set(Qwen3Options.ORDERED, mode == OutputMode.ORDERED);
        SerializableSupplier<LongSupplier> clock = () -> NOW::get;
        var h = new OneInputStreamOperatorTestHarness<>(new Qwen3InferenceOperatorFactory(o, clock), IN);
        h.setup(TypeInformation.of(CompletionRecord.class).createSerializer(new SerializerConfigImpl()));
        return h;
    }

    static OneInputStreamOperatorTestHarness<PromptRecord, String> asyncWait(OutputMode mode, AsyncFunction<PromptRecord, String> f)
            throws Exception {
        var h = new OneInputStreamOperatorTestHarness<>(new AsyncWaitOperatorFactory<>(f, 3_600_000, 16, mode), IN);
        h.setup(Types.STRING.createSerializer(new SerializerConfigImpl()));
        return h;
    }

    static void feed(OneInputStreamOperatorTestHarness<PromptRecord, ?> h, List<In> input) throws Exception {
        for (In in : input) {
            switch (in) {
                case Prompt p -> {
                    var r = PromptRecord.of(p.id(), "Say something about " + p.id());
                    r.maxTokens = p.maxTokens();
                    r.enableThinking = false;
                    h.processElement(p.timestamp() == null ? new StreamRecord<>(r) : new StreamRecord<>(r, p.timestamp()));
                }
                case Mark m -> h.processWatermark(new Watermark(m.timestamp()));
            }
        }
    }

    /** The output as "id@timestamp" (or "id@-") and "W<timestamp>", in emission order. */
    static List<String> elements(OneInputStreamOperatorTestHarness<?, ?> h) {
        List<String> out = new ArrayList<>();
        for (Object o : h.getOutput()) {
            if (o instanceof Watermark w) {
                out.add("W" + w.getTimestamp());
            } else if (o instanceof StreamRecord<?> r) {
                String id = r.getValue() instanceof CompletionRecord c ? c.id : String.valueOf(r.getValue());
                out.add(id + "@" + (r.hasTimestamp() ? String.valueOf(r.getTimestamp()) : "-"));
            }
        }
        return out;
    }

    /** Unordered mode promises the order of watermarks and of the record sets between them, not the order inside a set. */
    static List<Object> segments(List<String> elements) {
        List<Object> out = new ArrayList<>();
        TreeSet<String> set = null;
        for (String e : elements) {
            if (e.startsWith("W")) {
                set = null;
                out.add(e);
            } else {
                if (set == null) {
                    set = new TreeSet<>();
                    out.add(set);
                }
                set.add(e);
            }
        }
        return out;
    }

    static List<?> comparable(OutputMode mode, List<String> elements) {
        return mode == OutputMode.ORDERED ? elements : segments(elements);
    }

    @ParameterizedTest
    @EnumSource(value = OutputMode.class, names = {"ORDERED", "UNORDERED"})
    void watermarksAndTimestampsLeaveAsFromAsyncWaitOperator(OutputMode mode) throws Exception {
        List<String> expected;
        try (var reference = asyncWait(mode, (p, result) -> result.complete(List.of(p.id)))) {
            reference.initializeEmptyState();
            reference.open();
            feed(reference, INPUT);
            reference.endInput();
            expected = elements(reference);
        }
        try (var h = qwen3(mode)) {
            h.initializeEmptyState();
            h.open();
            feed(h, INPUT.subList(0, 3));
            assertFalse(elements(h).contains("W5000"), "the watermark waits for r1 and r2: " + elements(h));
            feed(h, INPUT.subList(3, INPUT.size()));
            h.endInput();
            List<String> actual = elements(h);
            assertEquals(expected.size(), actual.size(), actual.toString());
            assertEquals(comparable(mode, expected), comparable(mode, actual));
        }
        assertEquals(List.of("r1@1000", "r2@2000", "W5000", "r3@6000", "W7000", "W8000", "r4@-", "r5@9000", "r6@9500", "W10000",
                "r7@12000"), expected, "the reference itself");
    }

    @ParameterizedTest
    @EnumSource(value = OutputMode.class, names = {"ORDERED", "UNORDERED"})
    void restoredRecordsKeepTheirTimestampsTheirPlaceBetweenWatermarksAndTheirArrival(OutputMode mode) throws Exception {
        List<In> beforeCheckpoint = INPUT.subList(0, 7);
        List<In> afterRestore = INPUT.subList(7, INPUT.size());
        // the reference: AsyncWaitOperator checkpointed with everything in flight, restored with a function that answers
        OperatorSubtaskState referenceState;
        try (var first = asyncWait(mode, (p, result) -> {})) {
            first.initializeEmptyState();
            first.open();
            feed(first, beforeCheckpoint);
            referenceState = first.snapshot(1, 1);
        }
        List<String> expected;
        try (var restored = asyncWait(mode, (p, result) -> result.complete(List.of(p.id)))) {
            restored.initializeState(referenceState);
            restored.open();
            feed(restored, afterRestore);
            restored.endInput();
            expected = elements(restored);
        }

        OperatorSubtaskState state;
        NOW.set(1_000_000);
        try (var first = qwen3(mode)) {
            first.initializeEmptyState();
            first.open();
            feed(first, beforeCheckpoint);
            // completions are mails the harness has not run: all of r1..r4 and the watermarks are in flight
            assertEquals(List.of(), elements(first));
            state = first.snapshot(1, 1);
        }
        NOW.set(1_060_000); // restored a minute later
        try (var restored = qwen3(mode)) {
            restored.initializeState(state);
            restored.open();
            feed(restored, afterRestore);
            restored.endInput();
            List<String> actual = elements(restored);
            assertEquals(comparable(mode, expected), comparable(mode, actual));
            for (CompletionRecord c : restored.extractOutputValues()) {
                boolean fromCheckpoint = List.of("r1", "r2", "r3", "r4").contains(c.id);
                assertEquals(fromCheckpoint ? 60_000 : 0, c.latencyMs, c.id + ": latency counts from the first arrival");
                assertEquals(30_000L, c.slaMs);
                assertEquals(!fromCheckpoint, c.slaMet, c.id);
            }
        }
        assertTrue(expected.containsAll(List.of("r1@1000", "r4@-", "W7000", "W8000")), expected.toString());
    }
}
