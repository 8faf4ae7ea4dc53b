package io.flinkqwen3.flink.sql;

import java.time.Duration;
import java.util.List;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.config.MLPredictRuntimeConfigOptions;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.ml.AsyncPredictRuntimeProvider;
import org.apache.flink.table.ml.ModelProvider;

/** Hands ML_PREDICT an async predict function: rows in flight are batched by the task manager's engine. */
final class Qwen3ModelProvider implements AsyncPredictRuntimeProvider {
    private final Configuration options;
    private final List<String> outputColumns;
    private final Duration tableTimeout;

    /** tableTimeout: table.exec.async-ml-predict.timeout, which a query's own 'timeout' overrides. */
    Qwen3ModelProvider(Configuration options, List<String> outputColumns, Duration tableTimeout) {
        this.options = options;
        this.outputColumns = outputColumns;
        this.tableTimeout = tableTimeout;
    }

    @Override
    public AsyncPredictFunction createAsyncPredictFunction(ModelProvider.Context context) {
        // the planner takes the timeout the same way: the query's MAP first, then the table config
        Duration timeout = context.runtimeConfig().getOptional(MLPredictRuntimeConfigOptions.ASYNC_TIMEOUT).orElse(tableTimeout);
        return new Qwen3PredictFunction(options, outputColumns, timeout.toMillis());
    }

    @Override
    public ModelProvider copy() {
        return new Qwen3ModelProvider(options.clone(), outputColumns, tableTimeout);
    }
}
