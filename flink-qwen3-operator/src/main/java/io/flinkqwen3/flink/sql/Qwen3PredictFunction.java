package io.flinkqwen3.flink.sql;

import io.flinkqwen3.flink.TaskManagerEngines;
import io.flinkqwen3.runtime.Qwen3Engine;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.functions.FunctionContext;

/**
 * ML_PREDICT's function: the row's text goes to the task manager's shared engine (see
 * {@link RowPredictor}); the future completes with one output row. A row that cannot be answered
 * (no text, a prompt longer than the context) gets finish_reason "error: why" instead of failing
 * the query. A row still generating shortly before ML_PREDICT's async timeout is stopped and gets
 * finish_reason "timeout" (null texts), so Flink's own timeout, which fails the job, never fires.
 * Public because generated code calls it; the engine is acquired in open(), never in the
 * constructor (the function is serialized into the job graph).
 */
public final class Qwen3PredictFunction extends AsyncPredictFunction {
    private static final long serialVersionUID = 1L;
    /** Ends a row this long before Flink's timeout at most: its completion then always comes first. */
    static final long MAX_TIMEOUT_MARGIN_MS = 1_000;

    private final Configuration options;
    private final PredictOutput output;
    private final long timeoutMillis;
    private transient Qwen3Engine engine;
    private transient RowPredictor predictor;
    private transient Set<CompletableFuture<?>> inFlight;

    /** timeoutMillis: ML_PREDICT's async timeout ('timeout', else table.exec.async-ml-predict.timeout); 0: none. */
    Qwen3PredictFunction(Configuration options, List<String> outputColumns, long timeoutMillis) {
        this.options = options;
        this.output = new PredictOutput(outputColumns);
        this.timeoutMillis = timeoutMillis;
    }

    @Override
    public void open(FunctionContext context) {
        engine = TaskManagerEngines.acquireForTask(options);
        predictor = new RowPredictor(engine, options);
        inFlight = ConcurrentHashMap.newKeySet();
    }

    /** When a row is given up: a quarter of the timeout before it, at most {@link #MAX_TIMEOUT_MARGIN_MS}. */
    static long ownTimeoutMillis(long flinkTimeoutMillis) {
        return flinkTimeoutMillis - Math.min(MAX_TIMEOUT_MARGIN_MS, flinkTimeoutMillis / 4);
    }

    @Override
    public CompletableFuture<Collection<RowData>> asyncPredict(RowData input) {
        RowPredictor.Submitted submitted;
        try {
            submitted = predictor.submit(input.isNullAt(0) ? null : input.getString(0).toString());
        } catch (IllegalArgumentException e) {
            return CompletableFuture.completedFuture(List.of(output.errorRow(e.getMessage())));
        }
        inFlight.add(submitted.generation());
        submitted.generation().whenComplete((r, e) -> inFlight.remove(submitted.generation()));
        CompletableFuture<RowPredictor.Outcome> outcome = submitted.outcome();
        if (timeoutMillis > 0) {
            // counted from the call, as Flink's timer is: preparing the request took some of it
            long left = ownTimeoutMillis(timeoutMillis) - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - submitted.startNanos());
            outcome = outcome.orTimeout(Math.max(0, left), TimeUnit.MILLISECONDS).exceptionally(e -> {
                Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
                if (cause instanceof TimeoutException) {
                    return submitted.abandon("timeout", predictor.slaMillis());
                }
                throw e instanceof CompletionException c ? c : new CompletionException(e);
            });
        }
        return outcome.thenApply(o -> List.of(output.row(o)));
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
