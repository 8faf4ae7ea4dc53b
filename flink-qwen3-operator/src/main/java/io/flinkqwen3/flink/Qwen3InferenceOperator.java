package io.flinkqwen3.flink;

import io.flinkqwen3.runtime.EngineMetrics;
import io.flinkqwen3.runtime.GenerationRequest;
import io.flinkqwen3.runtime.GenerationResult;
import io.flinkqwen3.runtime.Qwen3Engine;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.tuple.Tuple2;
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
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;

/**
 * Answers {@link PromptRecord}s with the task manager's shared {@link Qwen3Engine}.
 *
 * <ul>
 *   <li>Never blocks the mailbox: records are submitted to the engine, completions come back as
 *       mails. At most max-in-flight requests per subtask; when full it yields (backpressure).</li>
 *   <li>In-flight requests are operator state: snapshotted on checkpoints and resubmitted after a
 *       restore (as AsyncWaitOperator does), so no prompt is lost.</li>
 *   <li>Each record's thinking budget comes from its SLA through {@link SlaBudgetPolicy}.</li>
 *   <li>Records that cannot be answered go to {@link Qwen3Inference#DEAD_LETTERS} with a reason.</li>
 * </ul>
 */
public class Qwen3InferenceOperator extends AbstractStreamOperator<CompletionRecord>
        implements OneInputStreamOperator<PromptRecord, CompletionRecord>, BoundedOneInput {
    private static final long serialVersionUID = 1L;

    private final Configuration options;
    private final transient MailboxExecutor mailbox;
    private final LongSupplier clock;

    private transient Qwen3Engine engine;
    private transient RequestBuilder requests;
    private transient SlaBudgetPolicy policy;
    private transient ListState<Tuple2<Long, byte[]>> inFlightState;
    private transient List<Tuple2<Long, byte[]>> restored;
    private transient LinkedHashMap<Long, InFlight> inFlight;
    private transient long nextSequence;

    private transient Counter completions;
    private transient Counter slaMet;
    private transient Counter rejected;
    private transient Counter thinkingTokens;
    private transient Histogram latency;

    /** A request between submit and emit. */
    private static final class InFlight {
        final long sequence;
        final PromptRecord record;
        final long arrivalMillis;
        final long deadlineMillis;
        final Long timestamp;
        final int thinkingBudget;
        final boolean lateOnArrival;
        GenerationResult result;

        InFlight(long sequence, PromptRecord record, long arrivalMillis, long deadlineMillis, Long timestamp,
                 int thinkingBudget, boolean lateOnArrival) {
            this.sequence = sequence;
            this.record = record;
            this.arrivalMillis = arrivalMillis;
            this.deadlineMillis = deadlineMillis;
            this.timestamp = timestamp;
            this.thinkingBudget = thinkingBudget;
            this.lateOnArrival = lateOnArrival;
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
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        inFlightState = context.getOperatorStateStore().getListState(new ListStateDescriptor<>("qwen3-in-flight-prompts",
                Types.TUPLE(Types.LONG, Types.PRIMITIVE_ARRAY(Types.BYTE))));
        restored = new ArrayList<>();
        if (context.isRestored()) {
            inFlightState.get().forEach(restored::add);
        }
    }

    @Override
    public void open() throws Exception {
        super.open();
        inFlight = new LinkedHashMap<>();
        engine = TaskManagerEngines.acquire(options.get(Qwen3Options.MODEL), Qwen3Options.engineOptions(options));
        requests = new RequestBuilder(options, engine.model().checkpoint().generationConfig());
        policy = SlaBudgetPolicy.defaults(options.get(Qwen3Options.ANSWER_RESERVE_TOKENS));
        registerMetrics();
        for (Tuple2<Long, byte[]> r : restored) {
            admit(RecordCodec.decodePrompt(r.f1), r.f0, null);
        }
        restored.clear();
    }

    private void registerMetrics() {
        var group = getMetricGroup();
        EngineMetrics m = engine.metrics();
        completions = group.counter("completions");
        slaMet = group.counter("slaMet");
        rejected = group.counter("rejectedRecords");
        thinkingTokens = group.counter("thinkingTokens");
        latency = group.histogram("latencyMs", new DescriptiveStatisticsHistogram(1000));
        group.gauge("inFlight", () -> inFlight.size());
        group.gauge("engineQueue", m::queued);
        group.gauge("batchSize", m::lastBatchSize);
        group.gauge("tokensPerSecond", m::tokensPerSecond);
        group.gauge("slaMetRatio", () -> completions.getCount() == 0 ? 1.0 : slaMet.getCount() / (double) completions.getCount());
    }

    @Override
    public void processElement(StreamRecord<PromptRecord> element) throws Exception {
        while (inFlight.size() >= options.get(Qwen3Options.MAX_IN_FLIGHT)) {
            mailbox.yield(); // run completions until a slot frees up: this is the backpressure
        }
        admit(element.getValue(), clock.getAsLong(), element.hasTimestamp() ? element.getTimestamp() : null);
    }

    private void admit(PromptRecord record, long arrivalMillis, Long timestamp) {
        String invalid = RequestBuilder.validate(record);
        if (invalid != null) {
            reject(record, invalid);
            return;
        }
        long deadline = record.deadlineMs != null ? record.deadlineMs
                : arrivalMillis + (record.slaMs != null ? record.slaMs : options.get(Qwen3Options.DEFAULT_SLA).toMillis());
        long now = clock.getAsLong();
        SlaBudgetPolicy.Decision decision;
        GenerationRequest request;
        try {
            int maxTokens = requests.maxTokens(record);
            int promptTokens = engine.promptTokens(requests.build(record, GenerationRequest.UNLIMITED)).length;
            Boolean thinking = options.get(Qwen3Options.THINKING) ? record.enableThinking : Boolean.FALSE;
            decision = policy.decide(deadline - now, promptTokens, maxTokens, record.thinkingBudget, thinking, engine.metrics());
            request = requests.build(record, decision.thinkingBudget());
            var entry = new InFlight(nextSequence++, record, arrivalMillis, deadline, timestamp, decision.thinkingBudget(),
                    decision.alreadyLate());
            long deadlineNanos = System.nanoTime() + (deadline - now) * 1_000_000L;
            engine.submit(request, deadlineNanos).whenComplete((result, error) -> mailbox.execute(
                    () -> complete(entry, result, error), "qwen3 completion %s", entry.sequence));
            inFlight.put(entry.sequence, entry);
        } catch (IllegalArgumentException e) {
            reject(record, e.getMessage());
        }
    }

    private void reject(PromptRecord record, String reason) {
        rejected.inc();
        byte[] payload = record.raw != null ? record.raw : RecordCodec.toJson(record);
        output.collect(Qwen3Inference.DEAD_LETTERS, new StreamRecord<>(new DeadLetter(record.id, reason, payload)));
    }

    private void complete(InFlight entry, GenerationResult result, Throwable error) {
        if (!inFlight.containsKey(entry.sequence)) {
            return; // closed or already restored elsewhere
        }
        if (error != null) {
            throw new IllegalStateException("Qwen3 engine failed on record " + entry.record.id + ": " + error.getMessage(), error);
        }
        entry.result = result;
        boolean ordered = options.get(Qwen3Options.ORDERED);
        Iterator<Map.Entry<Long, InFlight>> it = inFlight.entrySet().iterator();
        while (it.hasNext()) {
            InFlight head = it.next().getValue();
            if (head.result != null) {
                emit(head);
                it.remove();
            } else if (ordered) {
                break;
            }
        }
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
        c.slaMs = e.deadlineMillis - e.arrivalMillis;
        c.latencyMs = now - e.arrivalMillis;
        c.slaMet = !e.lateOnArrival && now <= e.deadlineMillis;
        c.model = options.get(Qwen3Options.MODEL);
        c.attributes = e.record.attributes == null ? new java.util.HashMap<>() : new java.util.HashMap<>(e.record.attributes);
        completions.inc();
        thinkingTokens.inc(r.thinkingTokens());
        latency.update(c.latencyMs);
        if (c.slaMet) {
            slaMet.inc();
        }
        output.collect(e.timestamp == null ? new StreamRecord<>(c) : new StreamRecord<>(c, e.timestamp));
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        List<Tuple2<Long, byte[]>> pending = new ArrayList<>();
        for (InFlight e : inFlight.values()) {
            pending.add(Tuple2.of(e.arrivalMillis, RecordCodec.encodePromptAvro(e.record)));
        }
        inFlightState.update(pending);
    }

    @Override
    public void endInput() throws Exception {
        while (!inFlight.isEmpty()) {
            mailbox.yield();
        }
    }

    @Override
    public void close() throws Exception {
        if (inFlight != null) {
            inFlight.clear();
        }
        if (engine != null) {
            TaskManagerEngines.release(engine);
            engine = null;
        }
        super.close();
    }

    /** Requests submitted and not yet emitted (for tests and metrics). */
    int inFlightCount() {
        return inFlight.size();
    }
}
