package io.flinkqwen3.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/**
 * The multi-process cluster test ({@code deploy/bin/cluster-test}): a Kafka broker, a Flink
 * JobManager and two TaskManagers (2 slots each) as separate processes on 127.0.0.1, the plugin jar
 * in Flink's lib/, the Kafka inference job submitted with {@code flink run}. It produces prompts,
 * kills one TaskManager with SIGKILL while they stream, starts a new one, and reads the output topic
 * with read_committed: every id must come out exactly once. Ends with one JSON line on stdout.
 *
 * <pre>
 * deploy/bin/cluster-test [--model LOCATION] [--records N] [--max-tokens N] [--timeout-s S] [--help]
 * </pre>
 */
public final class ClusterTest {
    static final String PROMPTS = "prompts", COMPLETIONS = "completions", DEAD_LETTERS = "prompts-dead-letters";
    static final int SLOTS = 2, PARALLELISM = 4;

    /** The command line (picocli). */
    @Command(name = "cluster-test", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Kafka, a Flink JobManager and two TaskManagers (2 slots each) as processes on 127.0.0.1; one"
                    + " TaskManager killed with SIGKILL mid-stream and replaced. Ends with one JSON line; exit 0 when"
                    + " nothing was lost or duplicated.")
    static final class Flags {
        @Option(names = "--model", paramLabel = "LOCATION",
                description = "A model folder, a .gguf file or a Hugging Face repo id (default: ../shared/fixtures/qwen3-dense-tiny).")
        String model;
        @Option(names = "--records", paramLabel = "N", defaultValue = "1000", description = "Prompts to produce (default: ${DEFAULT-VALUE}).")
        int records;
        @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "4", description = "Tokens per completion (default: ${DEFAULT-VALUE}).")
        int maxTokens;
        @Option(names = "--timeout-s", paramLabel = "S", defaultValue = "600",
                description = "Bound on the whole run, in seconds (default: ${DEFAULT-VALUE}).")
        int timeoutSeconds;
    }

    /** What a run is asked to do. {@code repo} is the repository root (jars are found under its modules' target/). */
    record Options(Path repo, String model, int records, int maxTokens, Duration timeout) {
        /** @throws ParameterException for an unknown flag, a value that is not a positive integer, a model path that does not exist */
        static Options parse(Path repo, String... args) {
            var flags = new Flags();
            var cli = new CommandLine(flags);
            cli.parseArgs(args);
            return of(repo, flags, cli);
        }

        static Options of(Path repo, Flags flags, CommandLine cli) {
            String model = flags.model != null ? flags.model : repo.resolve("../shared/fixtures/qwen3-dense-tiny").normalize().toString();
            // a repo id (owner/name) goes to the job as it is: the task managers resolve it (offline: from their cache)
            boolean path = model.startsWith("/") || model.startsWith(".") || model.startsWith("~") || model.endsWith(".gguf");
            if (path && !Files.exists(Path.of(model))) {
                throw new ParameterException(cli, "--model '" + model + "': no such file or folder (give a model folder with"
                        + " config.json and safetensors, a .gguf file, or a Hugging Face repo id owner/name)");
            }
            for (var flag : Map.of("--records", flags.records, "--max-tokens", flags.maxTokens, "--timeout-s", flags.timeoutSeconds).entrySet()) {
                if (flag.getValue() < 1) {
                    throw new ParameterException(cli, flag.getKey() + " must be at least 1, got " + flag.getValue());
                }
            }
            return new Options(repo, model, flags.records, flags.maxTokens, Duration.ofSeconds(flags.timeoutSeconds));
        }
    }

    private ClusterTest() {}

    public static void main(String[] args) throws Exception {
        var flags = new Flags();
        var cli = new CommandLine(flags);
        Options options;
        try {
            if (CommandLine.printHelpIfRequested(cli.parseArgs(args))) {
                return;
            }
            options = Options.of(Path.of(System.getProperty("qwen3.repo", ".")).toAbsolutePath().normalize(), flags, cli);
        } catch (ParameterException e) {
            System.err.println("cluster-test: " + e.getMessage());
            cli.usage(System.err);
            System.exit(2);
            return;
        }
        ObjectNode result;
        try {
            result = run(options);
        } catch (Exception e) {
            System.err.println("cluster-test: failed: " + e.getMessage());
            System.exit(1);
            return;
        }
        System.out.println(result);
        System.exit(result.path("lost").asLong() == 0 && result.path("duplicated").asLong() == 0 ? 0 : 1);
    }

    /** Runs the whole test; every process it starts is gone when it returns or throws. */
    static ObjectNode run(Options o) throws Exception {
        long deadline = System.nanoTime() + o.timeout().toNanos();
        Path plugin = jar(o.repo().resolve("flink-qwen3-plugin/target"), "flink-qwen3-plugin-", ".jar");
        Path examples = jar(o.repo().resolve("examples/target"), "flink-qwen3-examples-", "-job.jar");
        Path work = Files.createTempDirectory("qwen3-cluster-test-");
        log("work folder " + work + " (logs in " + work.resolve("logs") + ")");
        // a fixture model is tiny: the memory sized for Qwen3-0.6B in config.yaml would only reserve address space
        Map<String, String> overrides = Map.of(
                "taskmanager.memory.process.size", "1g", "taskmanager.memory.jvm-overhead.min", "192m",
                "taskmanager.memory.jvm-overhead.max", "192m", "jobmanager.memory.process.size", "1g",
                // a killed task manager is noticed by its missed heartbeats: 15 s instead of 50 (not much less:
                // on a busy 2-core machine a live task manager can miss a few seconds of heartbeats)
                "heartbeat.interval", "2000", "heartbeat.timeout", "15000",
                "restart-strategy.exponential-delay.initial-backoff", "500 ms", "metrics.fetcher.update-interval", "1000");
        var executor = Executors.newFixedThreadPool(2, Thread.ofPlatform().daemon().factory());
        var sampler = Executors.newSingleThreadScheduledExecutor(Thread.ofPlatform().daemon().factory());
        try (var cluster = new LocalCluster(work, o.repo().resolve("deploy/flink/config.yaml"),
                o.repo().resolve("deploy/cluster-lib/target/lib"), plugin, overrides)) {
            cluster.startKafka(Map.of(PROMPTS, PARALLELISM, COMPLETIONS, PARALLELISM, DEAD_LETTERS, 1), remaining(deadline));
            log("Kafka broker up at " + cluster.bootstrapServers());
            cluster.startJobManager();
            cluster.startTaskManager("tm-1");
            cluster.startTaskManager("tm-2");
            cluster.await("2 task managers to register", remaining(deadline),
                    () -> cluster.rest("/taskmanagers").path("taskmanagers").size() == 2);
            Map<String, Long> rssPeak = new ConcurrentHashMap<>(), rssBaseline = new LinkedHashMap<>(), weightsRss = new ConcurrentHashMap<>();
            cluster.taskManagers().forEach((id, p) -> rssBaseline.put(id, LocalCluster.rssMiB(p)));
            sampler.scheduleWithFixedDelay(() -> cluster.taskManagers().forEach((id, p) -> {
                rssPeak.merge(id, LocalCluster.rssMiB(p), Math::max);
                long weights = LocalCluster.mappedRssMiB(p, Path.of(o.model()));
                if (weights >= 0) {
                    weightsRss.put(id, weights); // the last sample while it ran: after loading, not while packing
                }
            }), 0, 1, TimeUnit.SECONDS);
            log("JobManager and 2 task managers up; submitting the job with flink run");

            String jobId = cluster.submit(examples, "io.flinkqwen3.examples.KafkaInferenceJob", List.of(
                    "--bootstrap-servers", cluster.bootstrapServers(), "--input", PROMPTS, "--output", COMPLETIONS,
                    "--dead-letters", DEAD_LETTERS, "--model", o.model(), "--format", "json",
                    "--parallelism", String.valueOf(PARALLELISM), "--checkpoint-ms", "1000",
                    "--max-tokens", String.valueOf(o.maxTokens())), remaining(deadline));
            cluster.await("job " + jobId + " to run on all slots", remaining(deadline), () -> allRunning(cluster, jobId));
            log("job " + jobId + " running");

            Set<String> committed = ConcurrentHashMap.newKeySet();
            var watching = executor.submit(() -> watchCommitted(cluster.bootstrapServers(), committed, o.records(), deadline));
            long start = System.nanoTime();
            int firstHalf = o.records() / 2;
            produce(cluster.bootstrapServers(), 0, firstHalf, o.maxTokens());
            cluster.await("a quarter of the completions to be committed", remaining(deadline), () -> {
                check(watching);
                return committed.size() >= o.records() / 4;
            });
            Map<String, Integer> engines = new LinkedHashMap<>();
            cluster.await("the task managers' engine gauges", remaining(deadline), () -> {
                engines.putAll(enginesPerTaskManager(cluster, jobId));
                return engines.size() == 2;
            });
            log("committed " + committed.size() + "/" + o.records() + "; engines per task manager " + engines + "; kill -9 tm-1");
            long killedAt = System.nanoTime();
            cluster.killTaskManager("tm-1");
            cluster.startTaskManager("tm-3");
            produce(cluster.bootstrapServers(), firstHalf, o.records(), o.maxTokens());
            cluster.await("the job to restart and run on tm-2 and tm-3", remaining(deadline),
                    () -> restarts(cluster, jobId) >= 1 && allRunning(cluster, jobId));
            double recoverySeconds = (System.nanoTime() - killedAt) / 1e9;
            log(String.format("job running again after %.1f s", recoverySeconds));
            cluster.await("the engine gauge of tm-3", remaining(deadline), () -> {
                enginesPerTaskManager(cluster, jobId).forEach((tm, n) -> engines.merge(tm, n, Math::max));
                return engines.containsKey("tm-3");
            });
            cluster.await("every completion to be committed", remaining(deadline), () -> {
                check(watching);
                return committed.size() >= o.records();
            });
            double seconds = (System.nanoTime() - start) / 1e9;
            long restarts = restarts(cluster, jobId);
            sampler.shutdownNow();
            cluster.cancel(jobId);

            Map<String, Integer> counts = readCommitted(cluster.bootstrapServers(), COMPLETIONS, o.records());
            long lost = 0, duplicated = 0;
            for (int i = 0; i < o.records(); i++) {
                int n = counts.getOrDefault(id(i), 0);
                lost += n == 0 ? 1 : 0;
                duplicated += Math.max(0, n - 1);
            }
            long unexpected = counts.keySet().stream().filter(k -> !k.startsWith("p-")).count();
            var result = new ObjectMapper().createObjectNode();
            result.put("records", o.records()).put("lost", lost).put("duplicated", duplicated + unexpected)
                    .put("dead_letters", readCommitted(cluster.bootstrapServers(), DEAD_LETTERS, 0).size())
                    .put("taskmanagers_killed", 1).put("job_restarts", restarts);
            engines.forEach(result.putObject("engines_per_taskmanager")::put);
            var rss = result.putArray("taskmanager_rss_mb");
            var baseline = result.putArray("taskmanager_baseline_rss_mb");
            var mapped = result.putArray("taskmanager_weights_rss_mb");
            for (String tm : cluster.taskManagers().keySet()) {
                rss.add(rssPeak.getOrDefault(tm, -1L));
                baseline.add(rssBaseline.getOrDefault(tm, -1L));
                mapped.add(weightsRss.getOrDefault(tm, -1L));
            }
            result.put("weights_mb", Math.round(weightBytes(Path.of(o.model())) / 1048576.0 * 10) / 10.0)
                    .put("records_per_s", Math.round(o.records() / seconds * 10) / 10.0)
                    .put("recovery_s", Math.round(recoverySeconds * 10) / 10.0)
                    .put("seconds", Math.round(seconds * 10) / 10.0)
                    .put("model", o.model()).put("max_tokens", o.maxTokens());
            return result;
        } finally {
            executor.shutdownNow();
            sampler.shutdownNow();
        }
    }

    static String id(int i) {
        return String.format("p-%06d", i);
    }

    private static void produce(String bootstrap, int from, int to, int maxTokens) {
        var props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("acks", "all");
        var json = new ObjectMapper();
        try (var producer = new KafkaProducer<>(props, new StringSerializer(), new StringSerializer())) {
            for (int i = from; i < to; i++) {
                ObjectNode prompt = json.createObjectNode().put("id", id(i))
                        .put("prompt", "Prompt " + i + ": name a prime number.").put("max_tokens", maxTokens);
                producer.send(new ProducerRecord<>(PROMPTS, id(i), prompt.toString()));
            }
            producer.flush();
        }
    }

    /** Collects the ids of committed completions as they appear, until all are there or the deadline. */
    private static Void watchCommitted(String bootstrap, Set<String> ids, int expected, long deadline) throws Exception {
        var json = new ObjectMapper();
        try (var consumer = committedConsumer(bootstrap)) {
            consumer.subscribe(List.of(COMPLETIONS));
            while (ids.size() < expected && System.nanoTime() < deadline && !Thread.currentThread().isInterrupted()) {
                for (var r : consumer.poll(Duration.ofMillis(200))) {
                    ids.add(json.readTree(r.value()).path("id").asText());
                }
            }
        }
        return null;
    }

    /** Every record of a topic from the beginning (read_committed): how often each id appears. */
    private static Map<String, Integer> readCommitted(String bootstrap, String topic, int expected) throws Exception {
        var json = new ObjectMapper();
        Map<String, Integer> counts = new HashMap<>();
        int total = 0;
        try (var consumer = committedConsumer(bootstrap)) {
            consumer.subscribe(List.of(topic));
            long quietSince = System.nanoTime(), end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            // after the expected count, keep reading 3 s more: a duplicate would arrive then
            while (System.nanoTime() < end && (total < expected || System.nanoTime() - quietSince < TimeUnit.SECONDS.toNanos(3))) {
                for (var r : consumer.poll(Duration.ofMillis(200))) {
                    counts.merge(json.readTree(r.value()).path("id").asText(), 1, Integer::sum);
                    total++;
                    quietSince = System.nanoTime();
                }
            }
        }
        return counts;
    }

    private static KafkaConsumer<byte[], byte[]> committedConsumer(String bootstrap) {
        var props = new Properties();
        props.put("bootstrap.servers", bootstrap);
        props.put("group.id", "cluster-test-" + UUID.randomUUID());
        props.put("auto.offset.reset", "earliest");
        props.put("isolation.level", "read_committed");
        props.put("enable.auto.commit", "false");
        return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    private static boolean allRunning(LocalCluster cluster, String jobId) throws Exception {
        JsonNode job = cluster.rest("/jobs/" + jobId);
        if (!"RUNNING".equals(job.path("state").asText())) {
            if (Set.of("FAILED", "CANCELED", "FINISHED").contains(job.path("state").asText())) {
                throw new IllegalStateException("job " + jobId + " is " + job.path("state").asText() + ": "
                        + rootCause(cluster.rest("/jobs/" + jobId + "/exceptions")) + "; logs in " + cluster.logs());
            }
            return false;
        }
        for (JsonNode v : job.path("vertices")) {
            if (!"RUNNING".equals(v.path("status").asText())) {
                return false;
            }
        }
        return true;
    }

    /**
     * Why the job last failed, from /jobs/:id/exceptions: the outermost cause thrown by flink-qwen3
     * (it says what to fix, e.g. the model), else the innermost cause, else the exception itself.
     */
    static String rootCause(JsonNode exceptions) {
        String trace = exceptions.path("exceptionHistory").path("entries").path(0).path("stacktrace").asText(); // newest first
        List<String> causes = trace.lines().filter(l -> l.startsWith("Caused by: ")).map(l -> l.substring("Caused by: ".length())).toList();
        return causes.stream().filter(c -> c.startsWith("io.flinkqwen3.")).findFirst()
                .or(() -> causes.stream().reduce((first, last) -> last))
                .orElse(trace.isBlank() ? "no exception recorded" : trace.lines().findFirst().orElseThrow());
    }

    private static long restarts(LocalCluster cluster, String jobId) throws Exception {
        for (JsonNode m : cluster.rest("/jobs/" + jobId + "/metrics?get=numRestarts")) {
            return m.path("value").asLong();
        }
        return 0;
    }

    /**
     * Engines open in each task manager that runs the job: the operator's gauge taskManagerEngines,
     * read per subtask through the REST API and grouped by the subtask's task manager; empty until
     * the JobManager has fetched the metrics.
     */
    private static Map<String, Integer> enginesPerTaskManager(LocalCluster cluster, String jobId) throws Exception {
        Map<String, Integer> engines = new LinkedHashMap<>();
        for (JsonNode v : cluster.rest("/jobs/" + jobId).path("vertices")) {
            String base = "/jobs/" + jobId + "/vertices/" + v.path("id").asText();
            String metric = null;
            for (JsonNode m : cluster.rest(base + "/subtasks/metrics")) {
                if (m.path("id").asText().endsWith(".taskManagerEngines")) {
                    metric = m.path("id").asText();
                }
            }
            if (metric == null) {
                continue;
            }
            for (JsonNode subtask : cluster.rest(base).path("subtasks")) {
                if (!"RUNNING".equals(subtask.path("status").asText())) {
                    continue; // not (yet) deployed to a task manager
                }
                String tm = subtask.path("taskmanager-id").asText();
                for (JsonNode m : cluster.rest(base + "/subtasks/" + subtask.path("subtask").asInt() + "/metrics?get=" + metric)) {
                    engines.merge(tm, m.path("value").asInt(), Math::max);
                }
            }
        }
        return engines;
    }

    private static void check(java.util.concurrent.Future<?> watching) throws Exception {
        if (watching.isDone()) {
            watching.get(); // rethrows what stopped the watcher
        }
    }

    /** Bytes of the weights files of a local model (safetensors shards or a .gguf file); 0 for a repo id. */
    static long weightBytes(Path model) throws Exception {
        if (Files.isRegularFile(model)) {
            return Files.size(model);
        }
        if (!Files.isDirectory(model)) {
            return 0;
        }
        try (Stream<Path> files = Files.list(model)) {
            long total = 0;
            for (Path f : files.filter(f -> f.toString().endsWith(".safetensors") && !f.getFileName().toString().startsWith("reference"))
                    .toList()) {
                total += Files.size(f);
            }
            return total;
        }
    }

    private static Path jar(Path target, String prefix, String suffix) throws Exception {
        try (Stream<Path> files = Files.list(target)) {
            return files.filter(f -> f.getFileName().toString().startsWith(prefix) && f.toString().endsWith(suffix)
                            && !f.getFileName().toString().startsWith("original-"))
                    .findFirst().orElseThrow(() -> new IllegalStateException("no " + prefix + "*" + suffix + " in " + target
                            + ": run 'mvn -DskipTests package' in the repository root first"));
        } catch (java.nio.file.NoSuchFileException e) {
            throw new IllegalStateException(target + " does not exist: run 'mvn -DskipTests package' in the repository root first");
        }
    }

    private static Duration remaining(long deadline) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
            throw new IllegalStateException("the cluster test ran out of time");
        }
        return Duration.ofNanos(left);
    }

    private static void log(String message) {
        System.err.println("cluster-test: " + message);
    }
}
