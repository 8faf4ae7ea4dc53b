package io.flinkqwen3.flink.sql;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.types.DataType;

/**
 * {@code QWEN3_CLASSIFY(text, labels [, options])}: the label, one of {@code labels} (an
 * {@code ARRAY<STRING>}), that Qwen3 gives the text. The answer is decoded under the JSON Schema
 * {@code {"label": {"enum": labels}}}, so it is always one of them; '' for a text it cannot answer
 * (blank, longer than the context), NULL for NULL. options: as for {@link Qwen3Complete} (a
 * 'system-prompt' that says what the labels mean helps); 'json-schema' is replaced by the labels'.
 *
 * <pre>
 * CREATE FUNCTION QWEN3_CLASSIFY AS 'io.flinkqwen3.flink.sql.Qwen3Classify' USING JAR '/path/flink-qwen3-operator.jar';
 * SELECT QWEN3_CLASSIFY(text, ARRAY['positive', 'negative'], MAP['model', 'Qwen/Qwen3-0.6B']) FROM reviews;
 * </pre>
 */
public class Qwen3Classify extends Qwen3AsyncFunction {
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper JSON = new ObjectMapper();

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
        submit(label, predictor(options), text, schema(labels), o -> labelOf(o.result().answer()), "");
    }

    /** The labels' schema; the labels must be two or more distinct non-empty strings. */
    String schema(String[] labels) {
        if (labels == null || labels.length < 2 || Arrays.stream(labels).anyMatch(l -> l == null || l.isEmpty())
                || new HashSet<>(Arrays.asList(labels)).size() != labels.length) {
            throw unusable("labels must be two or more distinct non-empty strings, got "
                    + (labels == null ? "NULL" : Arrays.toString(labels)));
        }
        return labelSchema(Arrays.asList(labels));
    }

    /** The JSON Schema {@code {"label": one of the labels}}: the only answers decoding under it allows. */
    public static String labelSchema(List<String> labels) {
        var label = JSON.createObjectNode();
        labels.forEach(label.putArray("enum")::add);
        var schema = JSON.createObjectNode().put("type", "object");
        schema.putObject("properties").set("label", label);
        schema.putArray("required").add("label");
        return schema.put("additionalProperties", false).toString();
    }

    /** The label of an answer decoded under {@link #labelSchema}. */
    public static String labelOf(String answer) {
        try {
            return JSON.readTree(answer).get("label").asText();
        } catch (IOException | RuntimeException e) {
            throw new IllegalStateException("a constrained answer that is not {\"label\": ...}: " + answer, e);
        }
    }
}
