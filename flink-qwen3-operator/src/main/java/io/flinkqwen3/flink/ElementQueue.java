package io.flinkqwen3.flink;

import java.util.ArrayDeque;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.flink.streaming.api.watermark.Watermark;

/**
 * Records in flight and the watermarks between them, with the emission rules of Flink's async
 * operator (its {@code OrderedStreamElementQueue} and {@code UnorderedStreamElementQueue}): a
 * sequence of segments, each a watermark or a set of records. Only the head segment emits:
 * completed records of the head set in completion order, then, once the set is empty, whatever
 * follows. So a watermark is a barrier between the records before and after it and never
 * overtakes a record that arrived before it. Ordered mode gives every record its own set, so
 * records also leave in arrival order.
 *
 * <p>Not thread-safe: the operator uses it from the mailbox thread only.
 *
 * @param <T> the in-flight entry; entries must be distinct (the operator's use identity equality)
 */
final class ElementQueue<T> {
    private final boolean ordered;
    /** Each a {@link Watermark} or a {@link RecordSet}. */
    private final ArrayDeque<Object> segments = new ArrayDeque<>();
    private final Map<T, RecordSet<T>> setOf = new IdentityHashMap<>();

    private static final class RecordSet<T> {
        /** In arrival order; an entry stays here until it is emitted. */
        final LinkedHashSet<T> entries = new LinkedHashSet<>();
        final ArrayDeque<T> completed = new ArrayDeque<>();
    }

    ElementQueue(boolean ordered) {
        this.ordered = ordered;
    }

    /** Adds a record after everything in the queue (in unordered mode, to the set after the last watermark). */
    @SuppressWarnings("unchecked")
    void add(T entry) {
        RecordSet<T> last = !ordered && segments.peekLast() instanceof RecordSet<?> set ? (RecordSet<T>) set : null;
        if (last == null) {
            last = new RecordSet<>();
            segments.addLast(last);
        }
        last.entries.add(entry);
        setOf.put(entry, last);
    }

    /** Adds a watermark after everything in the queue; it leaves once all records before it have. */
    void add(Watermark mark) {
        segments.addLast(mark);
    }

    /** Marks an entry completed; false when it is not (or no longer) in the queue. */
    boolean complete(T entry) {
        RecordSet<T> set = setOf.get(entry);
        if (set == null || set.completed.contains(entry)) {
            return false;
        }
        set.completed.addLast(entry);
        return true;
    }

    /** Hands out, in order, every record and watermark that may leave now. */
    @SuppressWarnings("unchecked")
    void drain(Consumer<T> records, Consumer<Watermark> watermarks) {
        while (!segments.isEmpty()) {
            if (segments.peekFirst() instanceof Watermark mark) {
                segments.pollFirst();
                watermarks.accept(mark);
                continue;
            }
            var head = (RecordSet<T>) segments.peekFirst();
            while (!head.completed.isEmpty()) {
                T entry = head.completed.pollFirst();
                head.entries.remove(entry);
                setOf.remove(entry);
                records.accept(entry);
            }
            if (!head.entries.isEmpty()) {
                return;
            }
            segments.pollFirst();
        }
    }

    /** Everything in the queue, in queue order (completed records not yet emitted included): what a checkpoint keeps. */
    @SuppressWarnings("unchecked")
    void forEach(Consumer<T> records, Consumer<Watermark> watermarks) {
        for (Object segment : segments) {
            if (segment instanceof Watermark mark) {
                watermarks.accept(mark);
            } else {
                ((RecordSet<T>) segment).entries.forEach(records);
            }
        }
    }

    boolean contains(T entry) {
        return setOf.containsKey(entry);
    }

    /** Records in the queue (watermarks not counted). */
    int records() {
        return setOf.size();
    }

    boolean isEmpty() {
        return segments.isEmpty();
    }

    void clear() {
        segments.clear();
        setOf.clear();
    }
}
