package io.flinkqwen3.examples;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.test.KafkaClusterTestKit;
import org.apache.kafka.common.test.TestKitNodes;

/** A real single-node Kafka (KRaft, broker and controller in one process) inside this JVM. */
public final class EmbeddedKafka implements AutoCloseable {
    private final KafkaClusterTestKit cluster;

    private EmbeddedKafka(KafkaClusterTestKit cluster) {
        this.cluster = cluster;
    }

    public static EmbeddedKafka start() throws Exception {
        var nodes = new TestKitNodes.Builder().setCombined(true).setNumBrokerNodes(1).setNumControllerNodes(1).build();
        var cluster = new KafkaClusterTestKit.Builder(nodes)
                .setConfigProp("transaction.state.log.replication.factor", "1")
                .setConfigProp("transaction.state.log.min.isr", "1")
                .setConfigProp("offsets.topic.replication.factor", "1")
                .setConfigProp("group.initial.rebalance.delay.ms", "0")
                .build();
        // Kafka's storage formatter prints its settings to stdout: keep stdout for the examples' results, and quiet
        var stdout = System.out;
        System.setOut(new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
        try {
            cluster.format();
        } finally {
            System.setOut(stdout);
        }
        cluster.startup();
        cluster.waitForReadyBrokers();
        return new EmbeddedKafka(cluster);
    }

    public String bootstrapServers() {
        return cluster.bootstrapServers();
    }

    public void createTopics(int partitions, String... topics) throws Exception {
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrapServers()))) {
            admin.createTopics(Arrays.stream(topics).map(t -> new NewTopic(t, partitions, (short) 1)).toList()).all().get();
        }
    }

    public void produce(String topic, List<byte[][]> keyValues) {
        var props = new Properties();
        props.put("bootstrap.servers", bootstrapServers());
        try (var producer = new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (byte[][] kv : keyValues) {
                producer.send(new ProducerRecord<>(topic, kv[0], kv[1]));
            }
            producer.flush();
        }
    }

    /**
     * Reads committed records of a topic from the beginning, handing each to {@code onRecord}, until
     * {@code expected} arrived and nothing more came for {@code quiet}, or {@code timeout} passed.
     */
    public List<ConsumerRecord<byte[], byte[]>> readCommitted(String topic, int expected, Duration quiet, Duration timeout,
                                                              Consumer<ConsumerRecord<byte[], byte[]>> onRecord) {
        List<ConsumerRecord<byte[], byte[]>> all = new ArrayList<>();
        long[] lastArrival = {System.nanoTime()};
        readCommitted(List.of(topic), timeout, r -> {
            all.add(r);
            lastArrival[0] = System.nanoTime();
            onRecord.accept(r);
        }, () -> all.size() >= expected && System.nanoTime() - lastArrival[0] > quiet.toNanos());
        return all;
    }

    /**
     * Reads committed records of the topics from the beginning, handing each to {@code onRecord},
     * until {@code done} says so (asked between polls) or {@code timeout} passed; whether done said so.
     */
    public boolean readCommitted(List<String> topics, Duration timeout, Consumer<ConsumerRecord<byte[], byte[]>> onRecord,
                                 BooleanSupplier done) {
        var props = new Properties();
        props.put("bootstrap.servers", bootstrapServers());
        props.put("group.id", "reader-" + UUID.randomUUID());
        props.put("auto.offset.reset", "earliest");
        props.put("isolation.level", "read_committed");
        try (var consumer = new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            consumer.subscribe(topics);
            long end = System.nanoTime() + timeout.toNanos();
            while (System.nanoTime() < end) {
                consumer.poll(Duration.ofMillis(200)).forEach(onRecord);
                if (done.getAsBoolean()) {
                    return true;
                }
            }
        }
        return false;
    }

    @Override
    public void close() throws Exception {
        cluster.close();
    }
}
