package io.flinkqwen3.flink.sql;

import io.flinkqwen3.runtime.GenerationResult;
import java.io.Serializable;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.LogicalTypeFamily;

/** Builds ML_PREDICT output rows from a generation result, column by column, by column name. */
final class PredictOutput implements Serializable {
    private static final long serialVersionUID = 1L;

    enum Field {
        ANSWER(LogicalTypeFamily.CHARACTER_STRING, r -> StringData.fromString(r.answer())),
        REASONING(LogicalTypeFamily.CHARACTER_STRING, r -> StringData.fromString(r.reasoning())),
        FINISH_REASON(LogicalTypeFamily.CHARACTER_STRING, r -> StringData.fromString(r.finishReason().wireName())),
        PROMPT_TOKENS(LogicalTypeFamily.INTEGER_NUMERIC, GenerationResult::promptTokens),
        THINKING_TOKENS(LogicalTypeFamily.INTEGER_NUMERIC, GenerationResult::thinkingTokens),
        ANSWER_TOKENS(LogicalTypeFamily.INTEGER_NUMERIC, GenerationResult::answerTokens);

        private final LogicalTypeFamily family;
        private final Function<GenerationResult, Object> value;

        Field(LogicalTypeFamily family, Function<GenerationResult, Object> value) {
            this.family = family;
            this.value = value;
        }

        LogicalTypeFamily family() {
            return family;
        }

        static Field named(String column) {
            return Arrays.stream(values()).filter(f -> f.name().equalsIgnoreCase(column)).findFirst().orElse(null);
        }

        static List<String> names() {
            return Arrays.stream(values()).map(f -> f.name().toLowerCase(java.util.Locale.ROOT)).toList();
        }
    }

    private final Field[] fields;

    PredictOutput(List<String> columns) {
        this.fields = columns.stream().map(Field::named).toArray(Field[]::new);
    }

    /** A row for input that cannot be answered: null texts, zero counts, finish_reason "error: ...". */
    RowData errorRow(String reason) {
        var row = new GenericRowData(fields.length);
        for (int i = 0; i < fields.length; i++) {
            row.setField(i, switch (fields[i]) {
                case FINISH_REASON -> StringData.fromString("error: " + reason);
                case ANSWER, REASONING -> null;
                default -> 0;
            });
        }
        return row;
    }

    RowData row(GenerationResult result) {
        var row = new GenericRowData(fields.length);
        for (int i = 0; i < fields.length; i++) {
            row.setField(i, fields[i].value.apply(result));
        }
        return row;
    }
}
