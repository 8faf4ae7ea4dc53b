package io.flinkqwen3.flink.sql;

import java.util.List;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.ml.AsyncPredictRuntimeProvider;
import org.apache.flink.table.ml.ModelProvider;

/** Hands ML_PREDICT an async predict function: rows in flight are batched by the task manager's engine. */
final class Qwen3ModelProvider implements AsyncPredictRuntimeProvider {
    private final Configuration options;
    private final List<String> outputColumns;

    Qwen3ModelProvider(Configuration options, List<String> outputColumns) {
        this.options = options;
        this.outputColumns = outputColumns;
    }

    @Override
    public AsyncPredictFunction createAsyncPredictFunction(ModelProvider.Context context) {
        return new Qwen3PredictFunction(options, outputColumns);
    }

    @Override
    public ModelProvider copy() {
        return new Qwen3ModelProvider(options.clone(), outputColumns);
    }
}
