package io.flinkqwen3.flink.sql;

import io.flinkqwen3.flink.Qwen3Options;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.api.config.ExecutionConfigOptions;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.ModelProviderFactory;
import org.apache.flink.table.ml.ModelProvider;
import org.apache.flink.table.types.logical.LogicalTypeFamily;

/**
 * {@code 'provider' = 'qwen3'} for Flink SQL's {@code CREATE MODEL ... ML_PREDICT}:
 *
 * <pre>
 * CREATE MODEL classifier INPUT (text STRING) OUTPUT (answer STRING, finish_reason STRING)
 * WITH ('provider' = 'qwen3', 'model' = 'Qwen/Qwen3-0.6B');
 * SELECT id, answer FROM ML_PREDICT(TABLE reviews, MODEL classifier, DESCRIPTOR(text));
 * </pre>
 *
 * The input is one string column (the user message). With 'labels' (a JSON array) each row is
 * classified: the columns {@code label} and {@code label_probabilities} (MAP&lt;STRING, DOUBLE&gt;). Options: every {@link Qwen3Options} option but {@link Qwen3Options#DATASTREAM_ONLY} (docs/options.md). Output
 * columns are chosen by name ({@link PredictOutput.Field}).
 */
public final class Qwen3ModelProviderFactory implements ModelProviderFactory {
    public static final String IDENTIFIER = "qwen3";

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(Qwen3Options.MODEL);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        var optional = new HashSet<>(Qwen3SqlOptions.options());
        optional.remove(Qwen3Options.MODEL);
        return optional;
    }

    @Override
    public ModelProvider createModelProvider(Context context) {
        String model = context.getObjectIdentifier().asSummaryString();
        Configuration options;
        try {
            options = Qwen3SqlOptions.parse(context.getCatalogModel().getOptions(), FactoryUtil.PROVIDER.key());
        } catch (IllegalArgumentException e) {
            throw new ValidationException("model " + model + ": " + e.getMessage(), e);
        }
        ResolvedSchema input = context.getCatalogModel().getResolvedInputSchema();
        ResolvedSchema output = context.getCatalogModel().getResolvedOutputSchema();
        if (input.getColumnCount() != 1
                || !input.getColumns().get(0).getDataType().getLogicalType().is(LogicalTypeFamily.CHARACTER_STRING)) {
            throw new ValidationException("model " + model + ": INPUT must be one STRING column (the prompt), got " + input);
        }
        List<String> outputs = output.getColumns().stream().map(Column::getName).toList();
        for (Column c : output.getColumns()) {
            var field = PredictOutput.Field.named(c.getName());
            if (field == null) {
                throw new ValidationException("model " + model + ": OUTPUT column '" + c.getName() + "' is not one of "
                        + PredictOutput.Field.names());
            }
            if (!field.accepts(c.getDataType().getLogicalType())) {
                throw new ValidationException("model " + model + ": OUTPUT column '" + c.getName() + "' must be "
                        + field.type() + ", got " + c.getDataType());
            }
            if (field.classifies() && options.getOptional(Qwen3Options.LABELS).isEmpty()) {
                throw new ValidationException("model " + model + ": OUTPUT column '" + c.getName() + "' needs the option 'labels' "
                        + "(a JSON array of the labels to classify into)");
            }
        }
        return new Qwen3ModelProvider(options, outputs,
                context.getConfiguration().get(ExecutionConfigOptions.TABLE_EXEC_ASYNC_ML_PREDICT_TIMEOUT));
    }
}
