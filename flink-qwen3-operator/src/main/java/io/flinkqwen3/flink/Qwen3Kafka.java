package io.flinkqwen3.flink;

import java.nio.charset.StandardCharsets;
import java.util.function.Function;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.KafkaSourceOptions;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

/**
 * Kafka plumbing for the records: a source of {@link PromptRecord}s (Avro or JSON values; bytes
 * that do not decode become dead letters instead of failing the job) and exactly-once sinks for
 * completions and dead letters.
 */
public final class Qwen3Kafka {
    /** Kafka transactions must time out before the broker's transaction.max.timeout.ms (15 min by default). */
    static final String TRANSACTION_TIMEOUT_MS = String.valueOf(10 * 60 * 1000);

    public enum Format { AVRO, JSON }

    private Qwen3Kafka() {}

    /**
     * A source builder for prompts: committed offsets of the group, else the earliest. Call
     * {@code setBounded(...)}, {@code setProperty(...)} etc. on it before {@code build()}.
     *
     * <p>The Kafka client's own metrics are not copied into Flink's metric group
     * ({@code register.consumer.metrics=false}; {@code setProperty} it back to {@code true} to have
     * them): the connector registers them by bare name, and Kafka uses the same names in several of
     * its groups (per broker node, per coordinator), so about 90 per subtask were dropped with a
     * "Name collision" warning each and the rest were ambiguous. Flink's source metrics
     * ({@code numRecordsIn}, {@code pendingRecords}, {@code KafkaSourceReader.*} offsets and commits)
     * are kept.
     */
    public static KafkaSourceBuilder<PromptRecord> promptSource(String bootstrapServers, String topic, String groupId) {
        return KafkaSource.<PromptRecord>builder()
                .setBootstrapServers(bootstrapServers)
                .setTopics(topic)
                .setGroupId(groupId)
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setProperty(KafkaSourceOptions.REGISTER_KAFKA_CONSUMER_METRICS.key(), "false")
                .setDeserializer(new PromptDeserializer());
    }

    /** Exactly-once sink of completions (key: the record id). Needs checkpointing. */
    public static KafkaSink<CompletionRecord> completionSink(String bootstrapServers, String topic, String transactionalIdPrefix,
                                                             Format format) {
        return exactlyOnce(bootstrapServers, topic, transactionalIdPrefix, c -> c.id, new CompletionEncoder(format));
    }

    /** Exactly-once sink of dead letters (key: the record id, when it had one). */
    public static KafkaSink<DeadLetter> deadLetterSink(String bootstrapServers, String topic, String transactionalIdPrefix,
                                                       Format format) {
        return exactlyOnce(bootstrapServers, topic, transactionalIdPrefix, d -> d.id, new DeadLetterEncoder(format));
    }

    /*
     * The value encoders are named classes on purpose. As serializable method references,
     * RecordCodec::toJson for completions and for dead letters share one implementation method, and
     * javac's $deserializeLambda$ turns both back into the first one: a JSON dead-letter sink then
     * cast every dead letter to CompletionRecord and failed the job on each.
     */

    /** Completions as Avro or JSON bytes. */
    record CompletionEncoder(Format format) implements SerializationSchema<CompletionRecord> {
        @Override
        public byte[] serialize(CompletionRecord c) {
            return format == Format.AVRO ? RecordCodec.encodeCompletionAvro(c) : RecordCodec.toJson(c);
        }
    }

    /** Dead letters as Avro or JSON bytes. */
    record DeadLetterEncoder(Format format) implements SerializationSchema<DeadLetter> {
        @Override
        public byte[] serialize(DeadLetter d) {
            return format == Format.AVRO ? RecordCodec.encodeDeadLetterAvro(d) : RecordCodec.toJson(d);
        }
    }

    private interface KeyOf<T> extends Function<T, String>, java.io.Serializable {}

    private static <T> KafkaSink<T> exactlyOnce(String bootstrapServers, String topic, String transactionalIdPrefix,
                                                KeyOf<T> key, SerializationSchema<T> value) {
        SerializationSchema<T> keyBytes = r -> key.apply(r) == null ? null : key.apply(r).getBytes(StandardCharsets.UTF_8);
        return KafkaSink.<T>builder()
                .setBootstrapServers(bootstrapServers)
                .setRecordSerializer(KafkaRecordSerializationSchema.<T>builder()
                        .setTopic(topic)
                        .setKeySerializationSchema(keyBytes)
                        .setValueSerializationSchema(value)
                        .build())
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(transactionalIdPrefix)
                .setProperty("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS)
                .build();
    }

    /**
     * Decodes and validates each value; what does not decode or is not valid becomes an undecodable
     * PromptRecord with its raw bytes and the reason (then a dead letter).
     */
    static final class PromptDeserializer implements KafkaRecordDeserializationSchema<PromptRecord> {
        private static final long serialVersionUID = 1L;

        @Override
        public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<PromptRecord> out) {
            out.collect(decode(record));
        }

        /**
         * The prompt, or an undecodable record saying why. Only decoding is guarded: what happens
         * downstream of out.collect must fail the task as usual, never turn this record into a dead letter.
         */
        static PromptRecord decode(ConsumerRecord<byte[], byte[]> record) {
            byte[] value = record.value();
            String key = record.key() == null ? null : new String(record.key(), StandardCharsets.UTF_8);
            String invalid;
            try {
                PromptRecord prompt = RecordCodec.decodePrompt(value);
                if (prompt.id == null) {
                    prompt.id = key;
                }
                invalid = RequestBuilder.validate(prompt);
                if (invalid == null) {
                    return prompt;
                }
                key = prompt.id;
            } catch (RuntimeException e) { // IllegalArgumentException saying what is wrong; anything else still must not fail the job
                invalid = e instanceof IllegalArgumentException ? e.getMessage() : "cannot decode the record: " + e;
                if (e instanceof RecordCodec.PromptDecodeException bad && bad.id() != null) {
                    key = bad.id(); // as for a record that decodes: its own id before the Kafka key
                }
            }
            // rejected here, so that the dead letter carries the bytes exactly as they came
            var bad = PromptRecord.undecodable(value == null ? new byte[0] : value,
                    invalid + " (" + record.topic() + "-" + record.partition() + "@" + record.offset() + ")");
            bad.id = key;
            return bad;
        }

        @Override
        public TypeInformation<PromptRecord> getProducedType() {
            return TypeInformation.of(PromptRecord.class);
        }
    }
}
