package io.flinkqwen3.examples;

import io.flinkqwen3.flink.Qwen3Inference;
import io.flinkqwen3.flink.Qwen3Kafka;
import io.flinkqwen3.flink.Qwen3Options;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * Reads prompts from an existing Kafka cluster, answers them with Qwen3 and writes completions to
 * another topic (exactly once), rejected records to a dead-letter topic.
 *
 * <pre>
 * examples/bin/kafka-job --bootstrap-servers host:9092 --input prompts --output completions
 *     [--dead-letters prompts-dlq] [--model Qwen/Qwen3-0.6B] [--group-id flink-qwen3] [--format avro|json]
 *     [--parallelism 2] [--checkpoint-ms 5000] [--max-tokens 256] [--default-sla-ms 30000] [--bounded]
 * </pre>
 */
public final class KafkaInferenceJob {
    /** Where the job reads and writes. */
    public record Topics(String bootstrapServers, String input, String output, String deadLetters, String groupId) {}

    private KafkaInferenceJob() {}

    /** Adds source, inference and both sinks to the environment. */
    public static void addPipeline(StreamExecutionEnvironment env, Topics topics, Configuration options,
                                   Qwen3Kafka.Format format, boolean bounded) {
        var source = Qwen3Kafka.promptSource(topics.bootstrapServers(), topics.input(), topics.groupId());
        if (bounded) {
            source.setBounded(OffsetsInitializer.latest());
        }
        var prompts = env.fromSource(source.build(), WatermarkStrategy.noWatermarks(), "prompts from " + topics.input())
                .uid("qwen3-prompt-source");
        var completions = Qwen3Inference.builder().options(options).build().apply(prompts);
        completions.sinkTo(Qwen3Kafka.completionSink(topics.bootstrapServers(), topics.output(), "qwen3-" + topics.output(), format))
                .uid("qwen3-completion-sink").name("completions to " + topics.output());
        completions.getSideOutput(Qwen3Inference.DEAD_LETTERS)
                .sinkTo(Qwen3Kafka.deadLetterSink(topics.bootstrapServers(), topics.deadLetters(), "qwen3-" + topics.deadLetters(), format))
                .uid("qwen3-dead-letter-sink").name("dead letters to " + topics.deadLetters());
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> flags = parse(args);
        String input = required(flags, "--input");
        var topics = new Topics(required(flags, "--bootstrap-servers"), input, required(flags, "--output"),
                flags.getOrDefault("--dead-letters", input + "-dead-letters"), flags.getOrDefault("--group-id", "flink-qwen3"));
        var options = new Configuration();
        options.set(Qwen3Options.MODEL, flags.getOrDefault("--model", "Qwen/Qwen3-0.6B"));
        options.set(Qwen3Options.DEFAULT_MAX_TOKENS, Integer.parseInt(flags.getOrDefault("--max-tokens", "256")));
        options.set(Qwen3Options.DEFAULT_SLA, java.time.Duration.ofMillis(Long.parseLong(flags.getOrDefault("--default-sla-ms", "30000"))));
        var env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(Integer.parseInt(flags.getOrDefault("--parallelism", "2")));
        env.enableCheckpointing(Long.parseLong(flags.getOrDefault("--checkpoint-ms", "5000")));
        var format = Qwen3Kafka.Format.valueOf(flags.getOrDefault("--format", "avro").toUpperCase(java.util.Locale.ROOT));
        addPipeline(env, topics, options, format, flags.containsKey("--bounded"));
        env.execute("flink-qwen3: " + topics.input() + " -> " + topics.output());
    }

    static Map<String, String> parse(String[] args) {
        Map<String, String> flags = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + args[i] + "'");
            }
            boolean hasValue = i + 1 < args.length && !args[i + 1].startsWith("--");
            flags.put(args[i], hasValue ? args[++i] : "true");
        }
        return flags;
    }

    static String required(Map<String, String> flags, String name) {
        String v = flags.get(name);
        if (v == null) {
            throw new IllegalArgumentException(name + " is required");
        }
        return v;
    }
}
