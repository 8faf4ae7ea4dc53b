package io.flinkqwen3.flink.sql;

import io.flinkqwen3.flink.Qwen3Options;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.ValidationException;
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
 * CREATE MODEL qwen INPUT (text STRING) OUTPUT (answer STRING, finish_reason STRING)
 * WITH ('provider' = 'qwen3', 'model' = 'Qwen/Qwen3-0.6B');
 * SELECT id, answer FROM ML_PREDICT(TABLE reviews, MODEL qwen, DESCRIPTOR(text));
 * </pre>
 *
 * The input is one string column (the user message). Output columns are chosen by name:
 * answer, reasoning, finish_reason (strings), prompt_tokens, thinking_tokens, answer_tokens (ints).
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

    /** Every option of {@link Qwen3Options} except the model and those of the DataStream operator only. */
    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        Set<ConfigOption<?>> optional = new LinkedHashSet<>(Qwen3Options.all());
        optional.remove(Qwen3Options.MODEL);
        optional.removeAll(Qwen3Options.DATASTREAM_ONLY);
        return optional;
    }

    @Override
    public ModelProvider createModelProvider(Context context) {
        String model = context.getObjectIdentifier().asSummaryString();
        for (ConfigOption<?> option : Qwen3Options.DATASTREAM_ONLY) {
            if (context.getCatalogModel().getOptions().containsKey(option.key())) {
                throw new ValidationException("model " + model + ": option '" + option.key() + "' applies to the DataStream "
                        + "operator only (ML_PREDICT runs rows through Flink's async lookup, which has its own capacity "
                        + "and output order, and rows carry no SLA); options here: " + keys(optionalOptions()));
            }
        }
        var helper = FactoryUtil.createModelProviderFactoryHelper(this, context);
        helper.validate();
        var options = new Configuration();
        context.getCatalogModel().getOptions().forEach(options::setString);
        try {
            Qwen3Options.validate(options);
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
            if (!c.getDataType().getLogicalType().is(field.family())) {
                throw new ValidationException("model " + model + ": OUTPUT column '" + c.getName() + "' must be "
                        + (field.family() == LogicalTypeFamily.CHARACTER_STRING ? "STRING" : "INT") + ", got " + c.getDataType());
            }
        }
        return new Qwen3ModelProvider(options, outputs);
    }

    private static String keys(Set<ConfigOption<?>> options) {
        return options.stream().map(ConfigOption::key).sorted().collect(Collectors.joining(", "));
    }
}
