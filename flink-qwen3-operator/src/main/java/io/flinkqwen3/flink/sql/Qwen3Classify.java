package io.flinkqwen3.flink.sql;

import io.flinkqwen3.runtime.Labels;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.types.DataType;

/**
 * {@code QWEN3_CLASSIFY(text, labels [, options])}: the label, one of {@code labels} (an
 * {@code ARRAY<STRING>} of 2 to 512 distinct non-empty strings), that Qwen3 finds most probable
 * for the text. Label scoring: the prompt is prefilled once and every label is scored as the
 * answer's continuation (no text is generated), so the result is always one of them. '' when the
 * most probable label's probability is below the options' 'min-confidence', and for a text it
 * cannot answer (blank, longer than the context); NULL for NULL. options: as for
 * {@link Qwen3Complete} (a 'system-prompt' that says what the labels mean helps); the labels
 * argument replaces 'labels' and 'json-schema'.
 *
 * <pre>
 * CREATE FUNCTION QWEN3_CLASSIFY AS 'io.flinkqwen3.flink.sql.Qwen3Classify' USING JAR '/path/flink-qwen3-operator.jar';
 * SELECT QWEN3_CLASSIFY(text, ARRAY['positive', 'negative'], MAP['model', 'Qwen/Qwen3-0.6B']) FROM reviews;
 * </pre>
 */
public class Qwen3Classify extends Qwen3AsyncFunction {
    private static final long serialVersionUID = 1L;

    /** For CREATE FUNCTION: every call's options MAP names the model. */
    public Qwen3Classify() {
        this(Map.of());
    }

    /** Defaults for every call (with 'model'); checked here. */
    public Qwen3Classify(Map<String, String> options) {
        super(options);
    }

    @Override
    String sqlName() {
        return "QWEN3_CLASSIFY";
    }

    @Override
    SequencedMap<String, DataType> arguments() {
        var arguments = new LinkedHashMap<String, DataType>();
        arguments.put("text", DataTypes.STRING());
        arguments.put("labels", DataTypes.ARRAY(DataTypes.STRING()));
        return arguments;
    }

    public void eval(CompletableFuture<String> label, String text, String[] labels) {
        eval(label, text, labels, null);
    }

    public void eval(CompletableFuture<String> label, String text, String[] labels, Map<String, String> options) {
        RowPredictor predictor = predictor(options);
        List<String> checked = labels(labels);
        // a label below 'min-confidence' is null, which Flink 2.2 hands on as '' anyway (see Qwen3AsyncFunction)
        submit(label, () -> predictor.classify(text, checked), o -> o.label() == null ? "" : o.label(), "");
    }

    /** The labels, checked: labels that cannot work fail the job without restarts (every row would fail). */
    List<String> labels(String[] labels) {
        if (labels == null) {
            throw unusable("labels must be an ARRAY of 2 or more distinct non-empty strings, got NULL");
        }
        try {
            return Labels.validate(Arrays.asList(labels));
        } catch (IllegalArgumentException e) {
            throw unusable(e.getMessage() + " (labels " + Arrays.toString(labels) + ")");
        }
    }
}
