package io.flinkqwen3.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.Uuid;

/**
 * A Kafka broker and a Flink standalone cluster as separate OS processes on 127.0.0.1, started the
 * way Flink's and Kafka's own scripts start them: Kafka's {@code kafka.tools.StorageTool} and
 * {@code kafka.Kafka}; Flink's {@code BashJavaUtils} for the memory options, then
 * {@code StandaloneSessionClusterEntrypoint}, {@code TaskManagerRunner} and, for {@code flink run},
 * {@code CliFrontend}, with a {@code conf/config.yaml} made of {@code deploy/flink/config.yaml} plus
 * this machine's ports and folders, and a {@code lib/} of Flink's jars plus the plugin jar.
 * Everything lives under one work folder; {@link #close()} kills every process it started.
 */
final class LocalCluster implements AutoCloseable {
    private static final String LOOPBACK = "127.0.0.1";
    private static final String EXEC_RESULT = "BASH_JAVA_UTILS_EXEC_RESULT:";
    private static final Pattern JOB_ID = Pattern.compile("JobID ([0-9a-f]{32})");

    private final Path work;
    private final Path flinkHome;
    private final Path conf;
    private final Path logs;
    private final Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    private final String driverClassPath = System.getProperty("java.class.path");
    private final Map<String, String> config;
    private final List<Process> processes = new CopyOnWriteArrayList<>();
    /** The broker and the JobManager by name: the cluster is lost when one of them exits. */
    private final Map<String, Process> essential = new ConcurrentSkipListMap<>();
    /** By id (tm-1, tm-2, ...), read by the memory sampler while the test starts new ones. */
    private final Map<String, Process> taskManagers = new ConcurrentSkipListMap<>();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final ObjectMapper json = new ObjectMapper();
    private final int restPort;
    private String bootstrapServers;

    /**
     * @param flinkConfig   deploy/flink/config.yaml
     * @param flinkLib      the folder of Flink's jars (deploy/cluster-lib/target/lib)
     * @param pluginJar     the shaded plugin jar, copied into lib/ as a user deploys it
     * @param overrides     settings of this run on top of flinkConfig (memory of a small model, timeouts)
     */
    LocalCluster(Path work, Path flinkConfig, Path flinkLib, Path pluginJar, Map<String, String> overrides) throws IOException {
        this.work = work;
        this.flinkHome = Files.createDirectories(work.resolve("flink"));
        this.conf = Files.createDirectories(flinkHome.resolve("conf"));
        this.logs = Files.createDirectories(work.resolve("logs"));
        Path lib = Files.createDirectories(flinkHome.resolve("lib"));
        try (Stream<Path> jars = Files.list(flinkLib)) {
            for (Path jar : jars.filter(p -> p.toString().endsWith(".jar")).toList()) {
                Files.createSymbolicLink(lib.resolve(jar.getFileName()), jar.toAbsolutePath());
            }
        }
        Files.copy(pluginJar, lib.resolve(pluginJar.getFileName()));
        // an interrupted run (Ctrl-C, a killed test JVM) leaves no process behind either
        Runtime.getRuntime().addShutdownHook(new Thread(() -> processes.forEach(Process::destroyForcibly)));
        restPort = freePort();
        config = new LinkedHashMap<>();
        new ObjectMapper(new YAMLFactory()).readTree(flinkConfig.toFile()).properties()
                .forEach(e -> config.put(e.getKey(), e.getValue().asText()));
        config.putAll(Map.of(
                "jobmanager.rpc.address", LOOPBACK, "jobmanager.bind-host", LOOPBACK, "jobmanager.rpc.port", String.valueOf(freePort()),
                "taskmanager.bind-host", LOOPBACK, "taskmanager.host", LOOPBACK,
                "rest.address", LOOPBACK, "rest.bind-address", LOOPBACK, "rest.port", String.valueOf(restPort),
                "execution.checkpointing.dir", work.resolve("checkpoints").toUri().toString(),
                "io.tmp.dirs", Files.createDirectories(work.resolve("tmp")).toString()));
        config.putAll(overrides);
        new ObjectMapper(new YAMLFactory()).writeValue(conf.resolve("config.yaml").toFile(), config);
        Files.writeString(conf.resolve("log4j.properties"), """
                rootLogger.level = INFO
                rootLogger.appenderRef.file.ref = MainAppender
                appender.main.name = MainAppender
                appender.main.type = File
                appender.main.fileName = ${sys:log.file}
                appender.main.layout.type = PatternLayout
                appender.main.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c - %m%n
                """);
    }

    Path logs() {
        return logs;
    }

    String bootstrapServers() {
        return bootstrapServers;
    }

    /** Formats the storage of a combined broker + controller (KRaft) and starts it, then creates the topics. */
    void startKafka(Map<String, Integer> topicPartitions, Duration timeout) throws Exception {
        int brokerPort = freePort(), controllerPort = freePort();
        bootstrapServers = LOOPBACK + ":" + brokerPort;
        var props = new Properties();
        props.putAll(Map.ofEntries(
                Map.entry("process.roles", "broker,controller"), Map.entry("node.id", "1"),
                Map.entry("controller.quorum.voters", "1@" + LOOPBACK + ":" + controllerPort),
                Map.entry("listeners", "PLAINTEXT://" + bootstrapServers + ",CONTROLLER://" + LOOPBACK + ":" + controllerPort),
                Map.entry("advertised.listeners", "PLAINTEXT://" + bootstrapServers),
                Map.entry("controller.listener.names", "CONTROLLER"), Map.entry("inter.broker.listener.name", "PLAINTEXT"),
                Map.entry("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
                Map.entry("log.dirs", work.resolve("kafka-data").toString()),
                Map.entry("offsets.topic.replication.factor", "1"), Map.entry("transaction.state.log.replication.factor", "1"),
                Map.entry("transaction.state.log.min.isr", "1"), Map.entry("group.initial.rebalance.delay.ms", "0")));
        Path server = work.resolve("kafka-server.properties");
        try (var out = Files.newBufferedWriter(server)) {
            props.store(out, "cluster-test broker");
        }
        List<String> jvm = List.of(java.toString(), "-Xmx384m", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-cp", driverClassPath);
        Process format = start("kafka-format", concat(jvm, "kafka.tools.StorageTool", "format", "-t",
                Uuid.randomUuid().toString(), "-c", server.toString()), Map.of());
        if (!format.waitFor(timeout.toSeconds(), TimeUnit.SECONDS) || format.exitValue() != 0) {
            throw new IllegalStateException("formatting Kafka's storage failed, see " + logs.resolve("kafka-format.out"));
        }
        Process broker = start("kafka", concat(jvm, "kafka.Kafka", server.toString()), Map.of());
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrapServers, "default.api.timeout.ms", "5000",
                "request.timeout.ms", "5000"))) {
            // a broker that has just started can still drop requests: retried until the topics exist
            await("the Kafka broker to create the topics", timeout, () -> {
                if (!broker.isAlive()) {
                    throw new IllegalStateException("the Kafka broker exited (" + broker.exitValue() + "), see " + logs.resolve("kafka.out"));
                }
                try {
                    var missing = new HashMap<>(topicPartitions);
                    missing.keySet().removeAll(admin.listTopics().names().get(5, TimeUnit.SECONDS));
                    if (missing.isEmpty()) {
                        return true;
                    }
                    admin.createTopics(missing.entrySet().stream().map(t -> new NewTopic(t.getKey(), t.getValue(), (short) 1)).toList())
                            .all().get(10, TimeUnit.SECONDS);
                } catch (ExecutionException | TimeoutException e) {
                    // not ready yet
                }
                return false; // listed on the next round
            });
        }
    }

    void startJobManager() throws IOException {
        List<String> command = flinkJvm("jobmanager", "GET_JM_RESOURCE_PARAMS", "org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint");
        start("jobmanager", command, Map.of());
    }

    /** Starts a task manager named {@code id} (its resource id, as the REST API lists it). */
    void startTaskManager(String id) throws IOException {
        List<String> command = new ArrayList<>(flinkJvm(id, "GET_TM_RESOURCE_PARAMS", "org.apache.flink.runtime.taskexecutor.TaskManagerRunner"));
        command.addAll(List.of("-D", "taskmanager.resource-id=" + id));
        taskManagers.put(id, start(id, command, Map.of()));
    }

    /** kill -9: the process gets no chance to clean up, as in a crashed node. */
    void killTaskManager(String id) throws InterruptedException {
        Process p = taskManagers.get(id);
        p.destroyForcibly();
        p.waitFor(30, TimeUnit.SECONDS);
    }

    Map<String, Process> taskManagers() {
        return taskManagers;
    }

    /** {@code flink run -d -c mainClass jar args}: returns the job id. */
    String submit(Path jar, String mainClass, List<String> args, Duration timeout) throws Exception {
        List<String> command = new ArrayList<>(List.of(java.toString()));
        command.addAll(javaOpts("client"));
        command.addAll(List.of("-Xmx512m", "-Dlog.file=" + logs.resolve("client.log"),
                "-Dlog4j.configurationFile=" + conf.resolve("log4j.properties").toUri(),
                "-cp", flinkHome.resolve("lib") + "/*", "org.apache.flink.client.cli.CliFrontend",
                "run", "-d", "-c", mainClass, jar.toString()));
        command.addAll(args);
        Process client = start("client", command, Map.of("FLINK_CONF_DIR", conf.toString()));
        if (!client.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
            throw new IllegalStateException("flink run did not return within " + timeout + ", see " + logs.resolve("client.out"));
        }
        String out = Files.readString(logs.resolve("client.out"));
        var m = JOB_ID.matcher(out);
        if (client.exitValue() != 0 || !m.find()) {
            throw new IllegalStateException("flink run failed (exit " + client.exitValue() + "):\n" + out);
        }
        return m.group(1);
    }

    /** GET on the JobManager's REST API. */
    JsonNode rest(String path) throws IOException, InterruptedException {
        var response = http.send(HttpRequest.newBuilder(URI.create("http://" + LOOPBACK + ":" + restPort + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IOException("GET " + path + ": HTTP " + response.statusCode() + " " + response.body());
        }
        return json.readTree(response.body());
    }

    void cancel(String jobId) throws IOException, InterruptedException {
        http.send(HttpRequest.newBuilder(URI.create("http://" + LOOPBACK + ":" + restPort + "/jobs/" + jobId + "?mode=cancel"))
                .method("PATCH", HttpRequest.BodyPublishers.noBody()).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.discarding());
    }

    /** Waits until {@code condition} holds (REST errors count as not yet), or fails naming {@code what}. */
    void await(String what, Duration timeout, RestCondition condition) throws Exception {
        long end = System.nanoTime() + timeout.toNanos();
        Exception last = null;
        while (System.nanoTime() < end) {
            try {
                if (condition.holds()) {
                    return;
                }
            } catch (IOException e) {
                last = e;
            }
            checkAlive();
            Thread.sleep(250);
        }
        throw new IllegalStateException("timed out after " + timeout.toSeconds() + " s waiting for " + what
                + (last == null ? "" : " (last error: " + last.getMessage() + ")") + "; logs in " + logs);
    }

    interface RestCondition {
        boolean holds() throws Exception;
    }

    /** Fails fast when the broker or the JobManager died (a task manager may be killed on purpose). */
    private void checkAlive() {
        // by name recorded at start: a dead process no longer tells its command line
        essential.forEach((name, p) -> {
            if (!p.isAlive()) {
                throw new IllegalStateException("the " + name + " process exited (" + p.exitValue() + "); see "
                        + logs.resolve(name + ".out") + " and the logs in " + logs);
            }
        });
    }

    /** Resident set size of a live process in MiB (Linux /proc), or -1 once it has gone. */
    static long rssMiB(Process p) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", String.valueOf(p.pid()), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
                }
            }
        } catch (IOException | UncheckedIOException e) {
            return -1;
        }
        return -1;
    }

    /**
     * Resident MiB of the process's mappings of the model's weights files (.safetensors, .gguf) at
     * or under {@code model} (Linux /proc/PID/smaps), or -1 once the process has gone.
     */
    static long mappedRssMiB(Process p, Path model) {
        String prefix = model.toAbsolutePath().normalize().toString();
        long kib = 0;
        boolean weights = false;
        try (Stream<String> lines = Files.lines(Path.of("/proc", String.valueOf(p.pid()), "smaps"))) {
            for (String line : (Iterable<String>) lines::iterator) {
                String[] fields = line.split("\\s+", 6);
                if (fields.length >= 5 && fields[0].contains("-") && !fields[0].endsWith(":")) { // a mapping's header line
                    String file = fields.length == 6 ? fields[5] : "";
                    weights = file.startsWith(prefix) && (file.endsWith(".safetensors") || file.endsWith(".gguf"));
                } else if (weights && line.startsWith("Rss:")) {
                    kib += Long.parseLong(fields[1]);
                }
            }
        } catch (IOException | UncheckedIOException e) {
            return -1;
        }
        return kib / 1024;
    }

    private List<String> flinkJvm(String name, String resourceCommand, String mainClass) throws IOException {
        // what bin/jobmanager.sh and bin/taskmanager.sh do: memory options from BashJavaUtils, then the entrypoint
        Path utilsOut = logs.resolve(name + "-resources.out");
        List<String> utils = List.of(java.toString(), "-Xmx128m", "-XX:+UseSerialGC", "-cp", flinkHome.resolve("lib") + "/*",
                "org.apache.flink.runtime.util.bash.BashJavaUtils", resourceCommand, "--configDir", conf.toString());
        Process p = new ProcessBuilder(utils).redirectErrorStream(true).redirectOutput(utilsOut.toFile()).start();
        try {
            if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException("BashJavaUtils " + resourceCommand + " failed, see " + utilsOut);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } finally {
            p.destroyForcibly();
        }
        List<String> results = Files.readAllLines(utilsOut).stream().filter(l -> l.startsWith(EXEC_RESULT))
                .map(l -> l.substring(EXEC_RESULT.length())).toList();
        if (results.size() < 2) {
            throw new IllegalStateException("BashJavaUtils " + resourceCommand + " printed no JVM and dynamic options, see " + utilsOut);
        }
        List<String> command = new ArrayList<>(List.of(java.toString()));
        command.addAll(split(results.get(0)));
        command.addAll(javaOpts(name.startsWith("jobmanager") ? "jobmanager" : "taskmanager"));
        command.addAll(List.of("-Dlog.file=" + logs.resolve(name + ".log"),
                "-Dlog4j.configurationFile=" + conf.resolve("log4j.properties").toUri(),
                "-cp", flinkHome.resolve("lib") + "/*", mainClass, "--configDir", conf.toString()));
        command.addAll(split(results.get(1)));
        return command;
    }

    /** env.java.default-opts.all, env.java.opts.all and the role's env.java.opts.ROLE, as Flink's scripts join them. */
    private List<String> javaOpts(String role) {
        List<String> opts = new ArrayList<>();
        for (String key : List.of("env.java.default-opts.all", "env.java.opts.all", "env.java.opts." + role)) {
            opts.addAll(split(config.getOrDefault(key, "")));
        }
        return opts;
    }

    private Process start(String name, List<String> command, Map<String, String> env) throws IOException {
        var builder = new ProcessBuilder(command).directory(flinkHome.toFile()).redirectErrorStream(true)
                .redirectOutput(logs.resolve(name + ".out").toFile());
        builder.environment().putAll(env);
        Process p = builder.start();
        processes.add(p);
        if (name.equals("kafka") || name.equals("jobmanager")) {
            essential.put(name, p);
        }
        return p;
    }

    private static List<String> split(String s) {
        return Arrays.stream(s.trim().split("\\s+")).filter(t -> !t.isEmpty()).toList();
    }

    private static List<String> concat(List<String> head, String... tail) {
        List<String> all = new ArrayList<>(head);
        all.addAll(List.of(tail));
        return all;
    }

    private static int freePort() throws IOException {
        try (var socket = new ServerSocket(0, 1, InetAddress.getByName(LOOPBACK))) {
            return socket.getLocalPort();
        }
    }

    /**
     * Stops every process this cluster started, newest first (SIGTERM, then SIGKILL after 10 s), and
     * waits for each; then deletes the broker's data, the checkpoints and lib/ (the logs stay).
     */
    @Override
    public void close() {
        processes.reversed().forEach(Process::destroy);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        for (Process p : processes) {
            try {
                if (!p.waitFor(Math.max(0, end - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    p.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                processes.forEach(Process::destroyForcibly);
                Thread.currentThread().interrupt();
                return;
            }
        }
        for (Path bulky : List.of(work.resolve("kafka-data"), work.resolve("checkpoints"), work.resolve("tmp"), flinkHome.resolve("lib"))) {
            deleteTree(bulky);
        }
    }

    /** Deletes a folder and everything in it, as far as it can. */
    static void deleteTree(Path folder) {
        try (Stream<Path> files = Files.walk(folder)) {
            for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(f);
            }
        } catch (IOException | UncheckedIOException e) {
            // already gone, or not ours to delete: the folder is under java.io.tmpdir either way
        }
    }
}
