package io.flinkqwen3.examples;

import io.flinkqwen3.cli.Commands;
import io.flinkqwen3.flink.sql.Qwen3Classify;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * A Flink SQL job: product reviews from a Kafka table, a one-line summary from {@code ML_PREDICT}
 * and a sentiment from {@code QWEN3_CLASSIFY}, written to another Kafka table; one JSON line per
 * review as written there. {@link #statements} is the SQL.
 */
@Command(name = "sql", mixinStandardHelpOptions = true, versionProvider = Commands.Version.class, sortOptions = false,
        description = {"Starts a Kafka broker and a local Flink cluster in this JVM, runs a SQL job that reads reviews from a "
                + "Kafka table, summarises them with ML_PREDICT, labels them with QWEN3_CLASSIFY and writes the rows to "
                + "another Kafka table, and prints each row written.",
                "Exit code 0 when every review has a row."})
public final class SqlExample implements Callable<Integer> {
    static final String[] REVIEWS = {
        "The battery died after two days and support never answered.",
        "Great sound, fits well, worth every cent.",
        "Arrived on time. Does what it says.",
        "The strap broke in the first week; I want my money back.",
        "Lovely colours, but the app is confusing.",
    };

    private final PrintStream out;
    @Spec
    CommandSpec spec;
    @Mixin
    LocalRun.Flags flags;

    SqlExample(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out));
    }

    /** Runs the example with these arguments, printing the rows written to {@code out}; returns the exit code. */
    public static int run(String[] args, PrintStream out) {
        return Commands.execute(new SqlExample(out), out, System.err, args);
    }

    /** The job, statement by statement: two Kafka tables, the model, the function, the INSERT. */
    static List<String> statements(String bootstrapServers, String model) {
        String kafka = "'connector' = 'kafka', 'properties.bootstrap.servers' = '" + bootstrapServers + "', 'format' = 'json'";
        return List.of(
                "CREATE TABLE reviews (id STRING, review STRING) WITH (" + kafka + ", 'topic' = 'reviews', "
                        + "'properties.group.id' = 'sql-example', 'scan.startup.mode' = 'earliest-offset', "
                        // see Qwen3Kafka.promptSource: the Kafka client's metrics collide by name in Flink's group
                        + "'properties.register.consumer.metrics' = 'false')",
                "CREATE TABLE labelled (id STRING, summary STRING, sentiment STRING, finish_reason STRING, latency_ms BIGINT) "
                        + "WITH (" + kafka + ", 'topic' = 'labelled')",
                "CREATE MODEL summarizer INPUT (review STRING) OUTPUT (answer STRING, finish_reason STRING, latency_ms BIGINT) "
                        + "WITH ('provider' = 'qwen3', 'model' = '" + model + "', 'system-prompt' = 'Summarise the review in "
                        + "at most eight words.', 'thinking' = 'false', 'default-max-tokens' = '24', 'default-sla' = '30s')",
                "CREATE TEMPORARY FUNCTION QWEN3_CLASSIFY AS '" + Qwen3Classify.class.getName() + "'",
                "INSERT INTO labelled SELECT id, answer, QWEN3_CLASSIFY(review, ARRAY['positive', 'negative', 'mixed'], "
                        + "MAP['model', '" + model + "', 'system-prompt', 'Label the sentiment of the product review.', "
                        + "'thinking', 'false']), finish_reason, latency_ms "
                        + "FROM ML_PREDICT(TABLE reviews, MODEL summarizer, DESCRIPTOR(review))");
    }

    @Override
    public Integer call() throws Exception {
        Commands.inRange(spec, "--records", flags.records, 1, 100_000, "a number of records from 1 to 100000");
        String model = LocalRun.model(spec, flags.model).replace("'", "''");
        try (var kafka = EmbeddedKafka.start()) {
            kafka.createTopics(2, "reviews", "labelled");
            List<byte[][]> records = new ArrayList<>();
            for (int i = 0; i < flags.records; i++) {
                var review = new LinkedHashMap<String, Object>();
                review.put("id", "review-" + i);
                review.put("review", REVIEWS[i % REVIEWS.length]);
                records.add(new byte[][] {("review-" + i).getBytes(StandardCharsets.UTF_8), LocalRun.JSON.writeValueAsBytes(review)});
            }
            kafka.produce("reviews", records);
            System.err.printf("sql: %d reviews in Kafka at %s, model %s%n", flags.records, kafka.bootstrapServers(), model);

            var settings = EnvironmentSettings.newInstance().inStreamingMode().withConfiguration(LocalRun.cluster()).build();
            var tables = TableEnvironment.create(settings);
            tables.getConfig().set("parallelism.default", "2");
            List<String> sql = statements(kafka.bootstrapServers(), model);
            sql.subList(0, sql.size() - 1).forEach(tables::executeSql);
            var job = tables.executeSql(sql.get(sql.size() - 1)).getJobClient().orElseThrow();

            Set<String> written = new HashSet<>();
            boolean complete = kafka.readCommitted(List.of("labelled"), LocalRun.GIVE_UP, r -> {
                String row = new String(r.value(), StandardCharsets.UTF_8);
                try {
                    written.add(LocalRun.JSON.readTree(row).path("id").asText());
                } catch (IOException e) {
                    throw new UncheckedIOException("the JSON format wrote a row that is not JSON: " + row, e);
                }
                out.println(row);
            }, () -> written.size() >= flags.records || LocalRun.failed(job));
            if (!LocalRun.finished("sql", job, complete, written.size(), flags.records)) {
                return 1;
            }
            System.err.printf("sql: %d/%d reviews summarised and labelled%n", written.size(), flags.records);
            return 0;
        }
    }
}
