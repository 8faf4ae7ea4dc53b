package io.flinkqwen3.flink;

import io.flinkqwen3.runtime.EngineMetrics;
import io.flinkqwen3.runtime.GenerationRequest;
import io.flinkqwen3.runtime.GenerationResult;
import io.flinkqwen3.runtime.Qwen3Engine;
import io.flinkqwen3.runtime.SlaBudgetPolicy;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.base.LongSerializer;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.api.java.typeutils.runtime.TupleSerializer;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.StreamOperatorParameters;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamElement;
import org.apache.flink.streaming.runtime.streamrecord.StreamElementSerializer;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * Answers {@link PromptRecord}s with the task manager's shared {@link Qwen3Engine}.
 *
 * <ul>
 *   <li>Never blocks the mailbox: records are submitted to the engine, completions come back as
 *       mails. At most max-in-flight requests per subtask; when full it yields (backpressure).</li>
 *   <li>Event time as in Flink's {@code AsyncWaitOperator}: a completion carries its prompt's
 *       timestamp, and a watermark leaves only after every record that arrived before it (ordered
 *       and unordered; see {@link ElementQueue}).</li>
 *   <li>In-flight records and the watermarks between them are operator state, written with Flink's
 *       {@link StreamElementSerializer} over the input's serializer (timestamps included) together
 *       with each record's arrival time, and resubmitted after a restore, so no prompt is lost and
 *       SLAs still count from the first arrival.</li>
 *   <li>Each record's thinking budget comes from its SLA through {@link SlaBudgetPolicy}: chosen on
 *       arrival, then re-decided by the engine every step (unless the record fixes it).</li>
 *   <li>Records that cannot be answered go to {@link Qwen3Inference#DEAD_LETTERS} with a reason and
 *       the record's timestamp; no record can fail the job.</li>
 *   <li>Records with labels are classified; one whose best label is less probable than
 *       'min-confidence' goes to {@link Qwen3Inference#LOW_CONFIDENCE} instead of the main output.</li>
 * </ul>
 */
public class Qwen3InferenceOperator extends AbstractStreamOperator<CompletionRecord>
        implements OneInputStreamOperator<PromptRecord, CompletionRecord>, BoundedOneInput {
    private static final long serialVersionUID = 1L;
    /** Operator state: (arrival epoch millis, record or watermark) in queue order. */
    static final String STATE_NAME = "qwen3-in-flight-elements";

    private final Configuration options;
    private final transient MailboxExecutor mailbox;
    private final LongSupplier clock;

    private transient TypeSerializer<PromptRecord> inputSerializer;
    private transient boolean objectReuse;
    private transient ListState<Tuple2<Long, StreamElement>> queueState;
    private transient List<Tuple2<Long, StreamElement>> restored;
    private transient ElementQueue<InFlight> queue;
    private transient int maxInFlight;
    private transient long defaultSlaMillis;
    private transient Qwen3Engine engine;
    private transient RequestBuilder requests;
    private transient SlaBudgetPolicy policy;
    private transient long nextSequence;
    /** Set in close(): completions from then on are not mailed back. */
    private transient volatile boolean closing;

    private transient Counter completions;
    private transient Counter slaMet;
    private transient Counter rejected;
    private transient Counter lowConfidence;
    private transient Counter thinkingTokens;
    private transient Histogram latency;

    /** A request between submit and emit. */
    private static final class InFlight {
        final long sequence;
        final PromptRecord record;
        final boolean hasTimestamp;
        final long timestamp;
        final long arrivalMillis;
        final long deadlineMillis;
        final int thinkingBudget;
        final boolean lateOnArrival;
        GenerationResult result;
        /** The engine's answer to come; cancelled when the operator closes. */
        CompletableFuture<GenerationResult> future;

        InFlight(long sequence, PromptRecord record, boolean hasTimestamp, long timestamp, long arrivalMillis,
                 long deadlineMillis, int thinkingBudget, boolean lateOnArrival) {
            this.sequence = sequence;
            this.record = record;
            this.hasTimestamp = hasTimestamp;
            this.timestamp = timestamp;
            this.arrivalMillis = arrivalMillis;
            this.deadlineMillis = deadlineMillis;
            this.thinkingBudget = thinkingBudget;
            this.lateOnArrival = lateOnArrival;
        }

        /** The input element as it arrived: what a checkpoint keeps. */
        StreamRecord<PromptRecord> element() {
            return hasTimestamp ? new StreamRecord<>(record, timestamp) : new StreamRecord<>(record);
        }
    }

    public Qwen3InferenceOperator(StreamOperatorParameters<CompletionRecord> parameters, Configuration options,
                                  LongSupplier clock) {
        super(parameters);
        this.options = options;
        this.mailbox = parameters.getMailboxExecutor();
        this.clock = clock;
    }

    @Override
    @SuppressWarnings({"unchecked", "rawtypes"})
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        inputSerializer = getOperatorConfig().getTypeSerializerIn(0, getUserCodeClassloader());
        var elementSerializer = new TupleSerializer<Tuple2<Long, StreamElement>>((Class) Tuple2.class,
                new TypeSerializer<?>[] {LongSerializer.INSTANCE, new StreamElementSerializer<>(inputSerializer)});
        queueState = context.getOperatorStateStore().getListState(new ListStateDescriptor<>(STATE_NAME, elementSerializer));
        restored = new ArrayList<>();
        if (context.isRestored()) {
            queueState.get().forEach(restored::add);
        }
    }

    @Override
    public void open() throws Exception {
        super.open();
        objectReuse = getExecutionConfig().isObjectReuseEnabled();
        queue = new ElementQueue<>(options.get(Qwen3Options.ORDERED));
        maxInFlight = options.get(Qwen3Options.MAX_IN_FLIGHT);
        Duration sla = options.get(Qwen3Options.DEFAULT_SLA);
        defaultSlaMillis = sla.compareTo(Duration.ofMillis(Long.MAX_VALUE)) >= 0 ? Long.MAX_VALUE : sla.toMillis();
        engine = TaskManagerEngines.acquireForTask(options);
        requests = new RequestBuilder(options, engine.model().checkpoint().generationConfig());
        policy = new SlaBudgetPolicy();
        registerMetrics();
        // replay what was in flight at the checkpoint, in its order (as AsyncWaitOperator does)
        for (Tuple2<Long, StreamElement> e : restored) {
            if (e.f1.isRecord()) {
                StreamRecord<PromptRecord> record = e.f1.asRecord();
                waitForCapacity();
                admit(record.getValue(), record.hasTimestamp(), record.getTimestamp(), e.f0);
            } else if (e.f1.isWatermark()) {
                processWatermark(e.f1.asWatermark());
            } else {
                throw new IllegalStateException("unexpected element in the in-flight state: " + e.f1);
            }
        }
        restored = null;
    }

    private void registerMetrics() {
        var group = getMetricGroup();
        EngineMetrics m = engine.metrics();
        completions = group.counter("completions");
        slaMet = group.counter("slaMet");
        rejected = group.counter("rejectedRecords");
        lowConfidence = group.counter("lowConfidence");
        thinkingTokens = group.counter("thinkingTokens");
        latency = group.histogram("latencyMs", new DescriptiveStatisticsHistogram(1000));
        group.gauge("inFlight", () -> queue.records());
        group.gauge("engineQueue", m::queued);
        group.gauge("batchSize", m::lastBatchSize);
        group.gauge("tokensPerSecond", m::tokensPerSecond);
        // engines open in this task manager's JVM: 1 however many slots run the operator (plugin jar in lib/)
        group.gauge("taskManagerEngines", TaskManagerEngines::openEngines);
        group.gauge("slaMetRatio", () -> completions.getCount() == 0 ? 1.0 : slaMet.getCount() / (double) completions.getCount());
    }

    @Override
    public void processElement(StreamRecord<PromptRecord> element) throws Exception {
        waitForCapacity();
        PromptRecord record = objectReuse ? inputSerializer.copy(element.getValue()) : element.getValue();
        admit(record, element.hasTimestamp(), element.getTimestamp(), clock.getAsLong());
    }

    /** Queues the watermark behind the records in flight; it is emitted as soon as they have been. */
    @Override
    public void processWatermark(Watermark mark) throws Exception {
        queue.add(mark);
        emitCompleted();
    }

    private void waitForCapacity() throws InterruptedException {
        while (queue.records() >= maxInFlight) {
            mailbox.yield(); // run completions until a slot frees up: this is the backpressure
        }
    }

    private void admit(PromptRecord record, boolean hasTimestamp, long timestamp, long arrivalMillis) {
        String invalid = RequestBuilder.validate(record);
        if (invalid != null) {
            reject(record, hasTimestamp, timestamp, invalid);
            return;
        }
        long deadline = record.deadlineMs != null ? record.deadlineMs
                : saturatedAdd(arrivalMillis, record.slaMs != null ? record.slaMs : defaultSlaMillis);
        long now = clock.getAsLong();
        long remaining = saturatedAdd(deadline, -now);
        InFlight entry;
        GenerationRequest request;
        try {
            int maxTokens = requests.maxTokens(record);
            int promptTokens = engine.promptTokens(requests.build(record, GenerationRequest.UNLIMITED)).length;
            Boolean thinking = options.get(Qwen3Options.THINKING) ? record.enableThinking : Boolean.FALSE;
            var decision = policy.decide(remaining, promptTokens, maxTokens, options.get(Qwen3Options.ANSWER_RESERVE_TOKENS),
                    record.thinkingBudget, thinking, engine.metrics());
            // a budget the policy chose is re-decided by the engine every step; one the record fixed is kept
            request = requests.build(record, decision.thinkingBudget(), record.thinkingBudget == null);
            entry = new InFlight(nextSequence++, record, hasTimestamp, timestamp, arrivalMillis, deadline,
                    decision.thinkingBudget(), decision.alreadyLate());
        } catch (RuntimeException e) {
            // a record that passed validation but still cannot be prepared is that record's problem, not the job's
            if (!(e instanceof IllegalArgumentException)) {
                LOG.warn("Qwen3: record {} could not be prepared; sending it to the dead letters", record.id, e);
            }
            reject(record, hasTimestamp, timestamp, reasonOf(e));
            return;
        }
        CompletableFuture<GenerationResult> result;
        try {
            result = engine.submit(request, saturatedAdd(System.nanoTime(), TimeUnit.MILLISECONDS.toNanos(remaining)));
        } catch (IllegalArgumentException e) { // a request that can never run (prompt too long ...)
            reject(record, hasTimestamp, timestamp, reasonOf(e));
            return;
        }
        entry.future = result;
        queue.add(entry);
        result.whenComplete((r, error) -> {
            if (!closing) {
                mailbox.execute(() -> complete(entry, r, error), "qwen3 completion %s", entry.sequence);
            }
        });
    }

    private static String reasonOf(Throwable e) {
        return e.getMessage() != null ? e.getMessage() : e.toString();
    }

    private void reject(PromptRecord record, boolean hasTimestamp, long timestamp, String reason) {
        rejected.inc();
        var letter = new DeadLetter(record == null ? null : record.id, reason, payloadOf(record));
        output.collect(Qwen3Inference.DEAD_LETTERS, hasTimestamp ? new StreamRecord<>(letter, timestamp) : new StreamRecord<>(letter));
    }

    /** The raw input bytes, else the record as JSON, else (a record JSON cannot represent) its toString. */
    private static byte[] payloadOf(PromptRecord record) {
        if (record == null) {
            return new byte[0];
        }
        if (record.raw != null) {
            return record.raw;
        }
        try {
            return RecordCodec.toJson(record);
        } catch (RuntimeException e) {
            return String.valueOf(record).getBytes(StandardCharsets.UTF_8);
        }
    }

    private void complete(InFlight entry, GenerationResult result, Throwable error) {
        if (queue == null || !queue.contains(entry)) {
            return; // closed since
        }
        if (error != null) {
            throw new IllegalStateException("Qwen3 engine failed on record " + entry.record.id + ": " + error.getMessage(), error);
        }
        entry.result = result;
        queue.complete(entry);
        emitCompleted();
    }

    private void emitCompleted() {
        queue.drain(this::emit, output::emitWatermark);
    }

    private void emit(InFlight e) {
        long now = clock.getAsLong();
        GenerationResult r = e.result;
        var c = new CompletionRecord();
        c.id = e.record.id;
        c.answer = r.answer();
        c.reasoning = r.reasoning();
        c.finishReason = r.finishReason().wireName();
        c.promptTokens = r.promptTokens();
        c.thinkingTokens = r.thinkingTokens();
        c.answerTokens = r.answerTokens();
        c.thinkingBudget = e.thinkingBudget;
        c.slaMs = saturatedAdd(e.deadlineMillis, -e.arrivalMillis);
        c.latencyMs = now - e.arrivalMillis;
        c.slaMet = !e.lateOnArrival && now <= e.deadlineMillis;
        c.model = options.get(Qwen3Options.MODEL);
        c.attributes = e.record.attributes == null ? new HashMap<>() : new HashMap<>(e.record.attributes);
        c.label = r.label();
        c.labelProbabilities = r.labelProbabilities() == null ? null : new HashMap<>(r.labelProbabilities());
        completions.inc();
        thinkingTokens.inc(r.thinkingTokens());
        latency.update(c.latencyMs);
        if (c.slaMet) {
            slaMet.inc();
        }
        var element = e.hasTimestamp ? new StreamRecord<>(c, e.timestamp) : new StreamRecord<>(c);
        if (Qwen3Options.lowConfidence(r, options)) {
            lowConfidence.inc();
            output.collect(Qwen3Inference.LOW_CONFIDENCE, element);
        } else {
            output.collect(element);
        }
    }

    static long saturatedAdd(long a, long b) {
        long sum = a + b;
        if (((a ^ sum) & (b ^ sum)) < 0) {
            return a < 0 ? Long.MIN_VALUE : Long.MAX_VALUE;
        }
        return sum;
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        List<Tuple2<Long, StreamElement>> pending = new ArrayList<>();
        queue.forEach(e -> pending.add(Tuple2.of(e.arrivalMillis, e.element())), mark -> pending.add(Tuple2.of(0L, mark)));
        queueState.update(pending);
    }

    @Override
    public void endInput() throws Exception {
        while (!queue.isEmpty()) {
            mailbox.yield();
        }
    }

    /**
     * Leaves the shared engine (failover, cancel, end of input): the requests still in flight are
     * cancelled there, so they stop taking batch slots from the other subtasks at the engine's next
     * step; a restore resubmits them from the checkpoint.
     */
    @Override
    public void close() throws Exception {
        closing = true;
        if (queue != null) {
            queue.forEach(e -> {
                if (e.future != null) {
                    e.future.cancel(false);
                }
            }, mark -> {});
            queue.clear();
        }
        if (engine != null) {
            TaskManagerEngines.release(engine);
            engine = null;
        }
        super.close();
    }

    /** Requests submitted and not yet emitted (for tests and metrics). */
    int inFlightCount() {
        return queue.records();
    }
}
