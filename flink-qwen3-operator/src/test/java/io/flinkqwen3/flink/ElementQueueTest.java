package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.junit.jupiter.api.Test;

/** The emission rules on their own, with completions in a chosen order. */
class ElementQueueTest {
    /** A distinct object per record (the queue goes by identity). */
    record Entry(String id) {}

    final List<String> out = new ArrayList<>();

    void drain(ElementQueue<Entry> q) {
        q.drain(e -> out.add(e.id()), w -> out.add("W" + w.getTimestamp()));
    }

    List<String> snapshot(ElementQueue<Entry> q) {
        List<String> s = new ArrayList<>();
        q.forEach(e -> s.add(e.id()), w -> s.add("W" + w.getTimestamp()));
        return s;
    }

    @Test
    void unorderedEmitsAsCompletedButNeverAcrossAWatermark() {
        var q = new ElementQueue<Entry>(false);
        Entry a = new Entry("a"), b = new Entry("b"), c = new Entry("c"), d = new Entry("d");
        q.add(a);
        q.add(b);
        q.add(new Watermark(10));
        q.add(c);
        q.add(new Watermark(20));
        q.add(new Watermark(30));
        q.add(d);
        assertEquals(List.of("a", "b", "W10", "c", "W20", "W30", "d"), snapshot(q));
        assertTrue(q.complete(d));
        assertTrue(q.complete(c));
        drain(q);
        assertEquals(List.of(), out, "c and d wait behind the watermark that follows a and b");
        assertTrue(q.complete(b));
        drain(q);
        assertEquals(List.of("b"), out, "b leaves before a: unordered within its set");
        assertEquals(List.of("a", "W10", "c", "W20", "W30", "d"), snapshot(q), "completed-not-emitted c and d are still state");
        assertTrue(q.complete(a));
        assertFalse(q.complete(a), "twice");
        drain(q);
        assertEquals(List.of("b", "a", "W10", "c", "W20", "W30", "d"), out);
        assertTrue(q.isEmpty());
        assertEquals(0, q.records());
    }

    @Test
    void orderedEmitsInArrivalOrder() {
        var q = new ElementQueue<Entry>(true);
        Entry a = new Entry("a"), b = new Entry("b"), c = new Entry("c");
        q.add(a);
        q.add(b);
        q.add(new Watermark(10));
        q.add(c);
        q.complete(c);
        q.complete(b);
        drain(q);
        assertEquals(List.of(), out);
        assertEquals(3, q.records(), "watermarks do not count against max-in-flight");
        q.complete(a);
        drain(q);
        assertEquals(List.of("a", "b", "W10", "c"), out);
    }

    @Test
    void aWatermarkWithNothingBeforeItLeavesAtOnceAndClearForgetsEverything() {
        var q = new ElementQueue<Entry>(false);
        q.add(new Watermark(5));
        drain(q);
        assertEquals(List.of("W5"), out);
        Entry a = new Entry("a");
        q.add(a);
        q.clear();
        assertFalse(q.contains(a));
        assertFalse(q.complete(a), "a completion arriving after close is ignored");
        assertTrue(q.isEmpty());
    }
}
