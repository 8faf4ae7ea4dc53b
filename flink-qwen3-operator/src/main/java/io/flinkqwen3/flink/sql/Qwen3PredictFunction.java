package io.flinkqwen3.flink.sql;

import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Options;
import io.flinkqwen3.flink.RequestBuilder;
import io.flinkqwen3.flink.TaskManagerEngines;
import io.flinkqwen3.runtime.Qwen3Engine;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.functions.FunctionContext;

/**
 * ML_PREDICT's function: the row's prompt goes to the task manager's shared engine; the future
 * completes with one output row. A row that cannot be answered (no prompt, prompt longer than the
 * context) gets finish_reason "error: why" instead of failing the query. Public because generated
 * code calls it; the engine is acquired in open(), never in the constructor (the function is
 * serialized into the job graph).
 */
public final class Qwen3PredictFunction extends AsyncPredictFunction {
    private static final long serialVersionUID = 1L;

    private final Configuration options;
    private final PredictOutput output;
    private transient Qwen3Engine engine;
    private transient RequestBuilder requests;
    private transient Set<CompletableFuture<?>> inFlight;

    Qwen3PredictFunction(Configuration options, List<String> outputColumns) {
        this.options = options;
        this.output = new PredictOutput(outputColumns);
    }

    @Override
    public void open(FunctionContext context) {
        engine = TaskManagerEngines.acquireForTask(options);
        requests = new RequestBuilder(options, engine.model().checkpoint().generationConfig());
        inFlight = ConcurrentHashMap.newKeySet();
    }

    @Override
    public CompletableFuture<Collection<RowData>> asyncPredict(RowData input) {
        var record = PromptRecord.of(null, input.isNullAt(0) ? null : input.getString(0).toString());
        String invalid = RequestBuilder.validate(record);
        if (invalid != null) {
            return CompletableFuture.completedFuture(List.of(output.errorRow(invalid)));
        }
        try {
            int budget = options.get(Qwen3Options.THINKING) ? options.get(Qwen3Options.THINKING_BUDGET) : 0;
            // 'default-sla' set on the model: the row's deadline, so the shared engine runs it by its urgency
            long deadline = options.getOptional(Qwen3Options.DEFAULT_SLA)
                    .map(sla -> saturatedAdd(System.nanoTime(), TimeUnit.MILLISECONDS.toNanos(sla.toMillis()))).orElse(Long.MAX_VALUE);
            var submitted = engine.submit(requests.build(record, budget), deadline);
            inFlight.add(submitted);
            submitted.whenComplete((r, e) -> inFlight.remove(submitted));
            return submitted.thenApply(result -> List.of(output.row(result)));
        } catch (IllegalArgumentException e) {
            return CompletableFuture.completedFuture(List.of(output.errorRow(e.getMessage())));
        }
    }

    private static long saturatedAdd(long a, long b) {
        long sum = a + b;
        return ((a ^ sum) & (b ^ sum)) < 0 ? Long.MAX_VALUE : sum;
    }

    /** Leaves the shared engine: rows still in flight are cancelled there (they stop taking batch slots). */
    @Override
    public void close() {
        if (inFlight != null) {
            inFlight.forEach(f -> f.cancel(false));
            inFlight.clear();
        }
        if (engine != null) {
            TaskManagerEngines.release(engine);
            engine = null;
        }
    }
}
