package io.flinkqwen3.flink.sql;

import io.flinkqwen3.flink.TaskManagerEngines;
import io.flinkqwen3.runtime.Qwen3Engine;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.function.Supplier;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.execution.SuppressRestartsException;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.catalog.DataTypeFactory;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.inference.InputTypeStrategies;
import org.apache.flink.table.types.inference.TypeInference;
import org.apache.flink.table.types.inference.TypeStrategies;
import org.apache.flink.table.functions.AsyncScalarFunction;
import org.apache.flink.table.functions.FunctionContext;

/**
 * What QWEN3_COMPLETE and QWEN3_CLASSIFY share: options (the same keys as {@code CREATE MODEL}'s,
 * docs/options.md) from the constructor, overridden per call by an options MAP; one
 * engine per task manager and model ({@link TaskManagerEngines}, shared with ML_PREDICT and the
 * DataStream operator), acquired on the first call that names it and released in close().
 *
 * <p>Options that cannot work (an unknown key, a value out of range, a model that cannot be
 * loaded) fail the job without restarts, with the reason: every row would fail again. A NULL
 * text gives NULL (Flink does not call the function). A text that cannot be answered (blank, a
 * prompt longer than the context) gives an empty string: Flink 2.2 turns a NULL that an async
 * function returns for non-NULL arguments into '' anyway, so the function says so itself.
 */
abstract class Qwen3AsyncFunction extends AsyncScalarFunction {
    private static final long serialVersionUID = 1L;

    private final HashMap<String, String> options;
    private transient Map<Map<String, String>, RowPredictor> predictors;
    private transient List<Qwen3Engine> engines;

    /** options: the defaults of every call (with 'model', or each call's MAP must give it). */
    Qwen3AsyncFunction(Map<String, String> options) {
        this.options = new HashMap<>(options);
        if (!options.isEmpty()) {
            Qwen3SqlOptions.parse(options); // fails here, when the function is created, not on the cluster
        }
    }

    /** Its SQL name, for messages. */
    abstract String sqlName();

    /** Its arguments before the optional options MAP, in order: names and types. */
    abstract SequencedMap<String, DataType> arguments();

    /**
     * Declared, not extracted from eval(): Flink's extractor reads parameter names with an ASM
     * that cannot parse Java 25 class files. Output: STRING.
     */
    @Override
    public TypeInference getTypeInference(DataTypeFactory typeFactory) {
        var names = new ArrayList<>(arguments().keySet());
        var types = new ArrayList<>(arguments().values());
        var without = InputTypeStrategies.explicitSequence(names.toArray(String[]::new), types.toArray(DataType[]::new));
        names.add("options");
        types.add(DataTypes.MAP(DataTypes.STRING(), DataTypes.STRING()));
        var with = InputTypeStrategies.explicitSequence(names.toArray(String[]::new), types.toArray(DataType[]::new));
        return TypeInference.newBuilder()
                .inputTypeStrategy(InputTypeStrategies.or(without, with))
                .outputTypeStrategy(TypeStrategies.explicit(DataTypes.STRING()))
                .build();
    }

    @Override
    public void open(FunctionContext context) {
        predictors = new HashMap<>();
        engines = new ArrayList<>();
        if (!options.isEmpty()) {
            predictor(null); // the constructor's model loads with the task, not with its first row
        }
    }

    /** The predictor for a call's options over the constructor's (cached per distinct MAP). */
    final RowPredictor predictor(Map<String, String> callOptions) {
        Map<String, String> key = callOptions == null ? Map.of() : callOptions;
        RowPredictor predictor = predictors.get(key);
        if (predictor == null) {
            var merged = new HashMap<>(options);
            merged.putAll(key);
            var config = parse(merged);
            Qwen3Engine engine = TaskManagerEngines.acquireForTask(config);
            engines.add(engine);
            predictor = new RowPredictor(engine, config);
            predictors.put(Map.copyOf(key), predictor);
        }
        return predictor;
    }

    private Configuration parse(Map<String, String> merged) {
        try {
            return Qwen3SqlOptions.parse(merged);
        } catch (IllegalArgumentException e) {
            throw unusable(e.getMessage());
        }
    }

    /** Arguments no row can be answered with: the job fails at once, with the reason, instead of restarting into it. */
    final SuppressRestartsException unusable(String reason) {
        return new SuppressRestartsException(new IllegalArgumentException(sqlName() + ": " + reason));
    }

    /**
     * Completes {@code result} with what the outcome of {@code call} gives, or {@code unanswered}
     * for a row that cannot be answered (the call throws IllegalArgumentException).
     */
    final <T> void submit(CompletableFuture<T> result, Supplier<RowPredictor.Submitted> call,
                          Function<RowPredictor.Outcome, T> value, T unanswered) {
        RowPredictor.Submitted submitted;
        try {
            submitted = call.get();
        } catch (IllegalArgumentException e) {
            result.complete(unanswered);
            return;
        }
        submitted.outcome().whenComplete((o, e) -> {
            if (e != null) {
                result.completeExceptionally(e);
            } else {
                result.complete(value.apply(o));
            }
        });
    }

    /** The answer is deterministic (seeded by the row), but the planner must not load a model to fold constants. */
    @Override
    public boolean supportsConstantFolding() {
        return false;
    }

    @Override
    public void close() {
        if (engines != null) {
            engines.forEach(TaskManagerEngines::release);
            engines.clear();
            predictors.clear();
        }
    }
}
