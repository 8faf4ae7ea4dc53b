package io.flinkqwen3.flink.sql;

import io.flinkqwen3.runtime.GenerationResult;
import java.io.Serializable;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;
import java.util.function.ToIntFunction;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.data.GenericMapData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeFamily;

/** Builds ML_PREDICT output rows from a row's outcome, column by column, by column name. */
final class PredictOutput implements Serializable {
    private static final long serialVersionUID = 1L;

    enum Field {
        ANSWER(DataTypes.STRING(), o -> text(o, GenerationResult::answer)),
        REASONING(DataTypes.STRING(), o -> text(o, GenerationResult::reasoning)),
        FINISH_REASON(DataTypes.STRING(), o -> StringData.fromString(o.finishReason())),
        PROMPT_TOKENS(DataTypes.INT(), o -> count(o, GenerationResult::promptTokens)),
        THINKING_TOKENS(DataTypes.INT(), o -> count(o, GenerationResult::thinkingTokens)),
        ANSWER_TOKENS(DataTypes.INT(), o -> count(o, GenerationResult::answerTokens)),
        THINKING_BUDGET(DataTypes.INT(), RowPredictor.Outcome::thinkingBudget),
        LATENCY_MS(DataTypes.BIGINT(), RowPredictor.Outcome::latencyMs),
        SLA_MET(DataTypes.BOOLEAN(), RowPredictor.Outcome::slaMet),
        LABEL(DataTypes.STRING(), o -> o.label() == null ? null : StringData.fromString(o.label())),
        LABEL_PROBABILITIES(DataTypes.MAP(DataTypes.STRING(), DataTypes.DOUBLE()), Field::probabilities);

        private final DataType type;
        private final Function<RowPredictor.Outcome, Object> value;

        Field(DataType type, Function<RowPredictor.Outcome, Object> value) {
            this.type = type;
            this.value = value;
        }

        /** The SQL type a column of this name must have (strings: any character string type). */
        DataType type() {
            return type;
        }

        boolean accepts(LogicalType declared) {
            LogicalType expected = type.getLogicalType();
            return expected.is(LogicalTypeFamily.CHARACTER_STRING) ? declared.is(LogicalTypeFamily.CHARACTER_STRING)
                    : declared.copy(true).equals(expected.copy(true));
        }

        static Field named(String column) {
            return Arrays.stream(values()).filter(f -> f.name().equalsIgnoreCase(column)).findFirst().orElse(null);
        }

        static List<String> names() {
            return Arrays.stream(values()).map(f -> f.name().toLowerCase(Locale.ROOT)).toList();
        }

        private static Object text(RowPredictor.Outcome o, Function<GenerationResult, String> field) {
            return o.result() == null ? null : StringData.fromString(field.apply(o.result()));
        }

        /** label_probabilities in the labels' order; null without labels (or without a result). */
        private static Object probabilities(RowPredictor.Outcome o) {
            if (o.result() == null || o.result().labelProbabilities() == null) {
                return null;
            }
            var map = new LinkedHashMap<StringData, Double>();
            o.result().labelProbabilities().forEach((label, p) -> map.put(StringData.fromString(label), p));
            return new GenericMapData(map);
        }

        /** Whether the column needs the 'labels' option. */
        boolean classifies() {
            return this == LABEL || this == LABEL_PROBABILITIES;
        }

        private static Object count(RowPredictor.Outcome o, ToIntFunction<GenerationResult> field) {
            return o.result() == null ? 0 : field.applyAsInt(o.result());
        }
    }

    private final Field[] fields;

    PredictOutput(List<String> columns) {
        this.fields = columns.stream().map(Field::named).toArray(Field[]::new);
    }

    /** A row for input that cannot be answered: null texts, zero counts, finish_reason "error: ...". */
    RowData errorRow(String reason) {
        return row(new RowPredictor.Outcome(null, "error: " + reason, 0, null, 0, null));
    }

    RowData row(RowPredictor.Outcome outcome) {
        var row = new GenericRowData(fields.length);
        for (int i = 0; i < fields.length; i++) {
            row.setField(i, fields[i].value.apply(outcome));
        }
        return row;
    }
}
