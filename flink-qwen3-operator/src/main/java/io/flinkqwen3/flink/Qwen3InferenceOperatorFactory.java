package io.flinkqwen3.flink;

import java.util.function.LongSupplier;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.streaming.api.operators.AbstractStreamOperatorFactory;
import org.apache.flink.streaming.api.operators.OneInputStreamOperatorFactory;
import org.apache.flink.streaming.api.operators.StreamOperator;
import org.apache.flink.streaming.api.operators.StreamOperatorParameters;
import org.apache.flink.util.function.SerializableSupplier;

/** Creates {@link Qwen3InferenceOperator}s with their mailbox executor (Flink 2.x operator factory). */
public class Qwen3InferenceOperatorFactory extends AbstractStreamOperatorFactory<CompletionRecord>
        implements OneInputStreamOperatorFactory<PromptRecord, CompletionRecord> {
    private static final long serialVersionUID = 1L;

    private final Configuration options;
    private final SerializableSupplier<LongSupplier> clock;

    public Qwen3InferenceOperatorFactory(Configuration options) {
        this(options, () -> System::currentTimeMillis);
    }

    /** With a clock (epoch millis) for tests. */
    Qwen3InferenceOperatorFactory(Configuration options, SerializableSupplier<LongSupplier> clock) {
        Qwen3Options.validate(options);
        this.options = options;
        this.clock = clock;
    }

    @Override
    @SuppressWarnings("unchecked")
    public <T extends StreamOperator<CompletionRecord>> T createStreamOperator(StreamOperatorParameters<CompletionRecord> parameters) {
        return (T) new Qwen3InferenceOperator(parameters, options, clock.get());
    }

    @Override
    public Class<? extends StreamOperator> getStreamOperatorClass(ClassLoader classLoader) {
        return Qwen3InferenceOperator.class;
    }
}
