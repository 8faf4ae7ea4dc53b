package io.flinkqwen3.flink.sql;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.types.DataType;

/**
 * {@code QWEN3_COMPLETE(prompt [, options])}: the answer of Qwen3 to the prompt (the text after
 * the think block); '' for a text it cannot answer (blank, longer than the context), NULL for NULL. options is a {@code MAP<STRING,
 * STRING>} of the keys {@code CREATE MODEL} takes (docs/options.md: all but the DataStream-only
 * ones), over the constructor's.
 *
 * <pre>
 * CREATE FUNCTION QWEN3_COMPLETE AS 'io.flinkqwen3.flink.sql.Qwen3Complete' USING JAR '/path/flink-qwen3-operator.jar';
 * SELECT QWEN3_COMPLETE(text, MAP['model', 'Qwen/Qwen3-0.6B', 'default-max-tokens', '32']) FROM reviews;
 * </pre>
 *
 * or {@code tableEnv.createTemporarySystemFunction("QWEN3_COMPLETE", new Qwen3Complete(Map.of("model", ...)))}.
 */
public class Qwen3Complete extends Qwen3AsyncFunction {
    private static final long serialVersionUID = 1L;

    /** For CREATE FUNCTION: every call's options MAP names the model. */
    public Qwen3Complete() {
        this(Map.of());
    }

    /** Defaults for every call (with 'model'); checked here. */
    public Qwen3Complete(Map<String, String> options) {
        super(options);
    }

    @Override
    String sqlName() {
        return "QWEN3_COMPLETE";
    }

    @Override
    SequencedMap<String, DataType> arguments() {
        return new LinkedHashMap<>(Map.of("prompt", DataTypes.STRING()));
    }

    public void eval(CompletableFuture<String> answer, String prompt) {
        eval(answer, prompt, null);
    }

    public void eval(CompletableFuture<String> answer, String prompt, Map<String, String> options) {
        RowPredictor predictor = predictor(options);
        submit(answer, () -> predictor.submit(prompt), o -> o.result().answer(), "");
    }
}
