package io.flinkqwen3.examples;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.flinkqwen3.flink.CompletionRecord;
import io.flinkqwen3.flink.PromptRecord;
import io.flinkqwen3.flink.Qwen3Kafka;
import io.flinkqwen3.flink.Qwen3Options;
import io.flinkqwen3.flink.RecordCodec;
import io.flinkqwen3.flink.TaskManagerEngines;
import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.model.ModelLocator;
import io.flinkqwen3.tokenizer.ChatTemplate;
import java.awt.BasicStroke;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import io.flinkqwen3.cli.Commands;
import java.util.concurrent.Callable;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * SLA adherence under load: open-loop Poisson arrivals at fractions of the measured capacity, with a
 * mix of SLAs, through the real pipeline (embedded Kafka -> local Flink cluster, one task manager ->
 * Kafka, exactly once), once per thinking policy: ours ({@code sla}: the SLA policy, re-decided every
 * engine step) and fixed budgets set on each record (0, 64, 256, 1024, unlimited).
 *
 * <pre>examples/bin/sla-bench --model LOCATION [--loads 0.5,0.8,1.0,1.2] [--duration SECONDS]
 *     [--mix 2000:0.3,10000:0.5,60000:0.2] [--policies sla,0,64,256,1024,unlimited] [--answer-tokens 64]
 *     [--max-tokens 1200] [--capacity-records 300 | --capacity RECORDS_PER_S] [--drain SECONDS] [--threads 2]
 *     [--out DIR] [--seed 1] [--append]
 * examples/bin/sla-bench --plot-only [--out DIR] [--mix ...]     (redraws the plot from DIR/sla-bench.csv)</pre>
 *
 * Capacity: records/s the pipeline answers without thinking (the better of two bursts of
 * --capacity-records, answers of --answer-tokens), the work every record needs whatever it thinks;
 * with --capacity one burst still runs first, as a warm-up. Each (policy, load) cell runs its own job on fresh topics for --duration seconds of arrivals, then waits up to --drain seconds for the
 * last answers; records still unanswered then count as missed. Latency runs from the record's send
 * to the operator's emit (each record's deadline_ms is its send time + SLA; the sink's commit at the
 * next checkpoint comes on top). Every answer is cut at --answer-tokens (option max_answer_tokens):
 * random-weight fixtures never end one.
 *
 * <p>A model directory whose chat template does not open the think block is run as a copy that does
 * (the Qwen3-*-Thinking-2507 generation prompt; weights linked, not copied): a fixture then thinks until
 * its budget or max tokens, never closing the thought itself. The JSON lines say so.
 *
 * <p>Prints one JSON line per policy and load; writes {@code sla-bench.csv} and {@code sla-bench.png}
 * (hit rate and mean thinking tokens vs load, a line per policy) under --out. With --append the rows
 * already in that CSV stay (those of the policies and loads run again are replaced), so a bench can
 * be run in parts, e.g. one policy at a time with the same --capacity.
 */
@Command(name = "sla-bench", mixinStandardHelpOptions = true, versionProvider = Commands.Version.class, sortOptions = false,
        description = {"SLA adherence under load: open-loop Poisson arrivals at fractions of the measured capacity, with a mix "
                + "of SLAs, through embedded Kafka -> local Flink -> Kafka, per thinking policy (ours: 'sla'; fixed budgets).",
                "One JSON line per policy and load on stdout; sla-bench.csv and sla-bench.png under --out."})
public final class SlaBenchmark implements Callable<Integer> {
    static final String TEMPLATE_NOTE = "Thinking-2507 template (think block opened by the prompt)";

    private final PrintStream out;
    @Spec
    CommandSpec spec;
    @Option(names = "--model", paramLabel = "LOCATION", description = "Model directory, .gguf file or Hugging Face repo id.")
    String model;
    @Option(names = "--loads", split = ",", paramLabel = "FRACTION", defaultValue = "0.5,0.8,1.0,1.2",
            description = "Arrival rates as fractions of the measured capacity (default: ${DEFAULT-VALUE}).")
    double[] loads;
    @Option(names = "--duration", paramLabel = "SECONDS", defaultValue = "20", description = "Arrivals per policy and load (default: ${DEFAULT-VALUE}).")
    double duration;
    @Option(names = "--drain", paramLabel = "SECONDS", defaultValue = "20",
            description = "Wait for the last answers at most this long; unanswered records count as missed (default: ${DEFAULT-VALUE}).")
    double drain;
    @Option(names = "--mix", paramLabel = "SLA_MS:SHARE,...", defaultValue = "2000:0.3,10000:0.5,60000:0.2",
            description = "SLA classes and their shares of the arrivals (default: ${DEFAULT-VALUE}).")
    String mixText;
    @Option(names = "--policies", split = ",", paramLabel = "POLICY", defaultValue = "sla,0,64,256,1024,unlimited",
            description = "'sla' (the operator's SLA policy), fixed budgets N >= 0, 'unlimited' (default: ${DEFAULT-VALUE}).")
    List<String> policies;
    @Option(names = "--answer-tokens", paramLabel = "N", defaultValue = "64",
            description = "Answers are cut here (max_answer_tokens) and the SLA policy keeps this many steps for them (default: ${DEFAULT-VALUE}).")
    int answerTokens;
    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "1200",
            description = "Thinking plus answer per record: where unlimited thinking ends (default: ${DEFAULT-VALUE}).")
    int maxTokens;
    @Option(names = "--capacity-records", paramLabel = "N", defaultValue = "300",
            description = "Records of each capacity burst (default: ${DEFAULT-VALUE}).")
    int capacityRecords;
    @Option(names = "--capacity", paramLabel = "RECORDS_PER_S",
            description = "Use this capacity instead of measuring it (one burst still runs, as a warm-up).")
    Double fixedCapacity;
    @Option(names = "--threads", paramLabel = "N", defaultValue = "2", description = "Kernel threads of the engine (default: ${DEFAULT-VALUE}).")
    int threads;
    @Option(names = "--max-batch", paramLabel = "N", defaultValue = "32", description = "Sequences per engine step (default: ${DEFAULT-VALUE}).")
    int maxBatch;
    @Option(names = "--out", paramLabel = "DIR", defaultValue = "target/sla-bench", description = "Where the CSV and the plot go (default: ${DEFAULT-VALUE}).")
    Path outDir;
    @Option(names = "--seed", paramLabel = "N", defaultValue = "1", description = "Seed of the arrivals (default: ${DEFAULT-VALUE}).")
    long seed;
    @Option(names = "--append", description = "Keep the rows of other policies and loads already in --out's CSV.")
    boolean append;
    @Option(names = "--plot-only", description = "Only redraw --out's plot from its CSV.")
    boolean plotOnly;

    SlaBenchmark(PrintStream out) {
        this.out = out;
    }

    /** An SLA class: its latency target and share of the arrivals. */
    record SlaClass(long slaMs, double share) {}

    /** What one (policy, load) cell measured. */
    record Cell(String policy, double load, double offeredPerSecond, int sent, int answered, int met,
                Map<Long, int[]> byClass, double p50, double p95, double p99, double meanBudget, double meanThinking,
                double recordsPerSecond) {
        double hitRate() {
            return sent == 0 ? 0 : met / (double) sent;
        }
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out));
    }

    /** Runs the bench with these arguments, JSON lines to {@code out}; returns the exit code. */
    public static int run(String[] args, PrintStream out) {
        return Commands.execute(new SlaBenchmark(out), out, System.err, args);
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }

    @Override
    public Integer call() throws Exception {
        System.setProperty("java.awt.headless", "true"); // the plot is drawn off screen
        List<SlaClass> mix;
        try {
            mix = parseMix(mixText);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        if (plotOnly) {
            List<Cell> cells = readCsv(outDir.resolve("sla-bench.csv"), mix);
            plot(outDir.resolve("sla-bench.png"), cells, cells.stream().map(Cell::policy).distinct().toList());
            return 0;
        }
        if (model == null) {
            throw usage("Missing required option: '--model=LOCATION'");
        }
        for (String p : policies) {
            try {
                budgetOf(p);
            } catch (IllegalArgumentException e) {
                throw usage("--policies: " + e.getMessage());
            }
        }
        if (!(duration > 0) || !(drain >= 0) || Arrays.stream(loads).anyMatch(l -> !(l > 0))
                || fixedCapacity != null && !(fixedCapacity > 0)) {
            throw usage("--duration, --loads and --capacity expect numbers > 0, --drain >= 0");
        }
        Commands.inRange(spec, "--answer-tokens", answerTokens, 1, 100_000, "a positive token count");
        Commands.inRange(spec, "--max-tokens", maxTokens, answerTokens + 1, Integer.MAX_VALUE, "more tokens than --answer-tokens");
        Commands.inRange(spec, "--capacity-records", capacityRecords, 1, 1_000_000, "a positive number of records");
        var random = new Random(seed);
        Files.createDirectories(outDir);
        Path csv = outDir.resolve("sla-bench.csv");
        List<Cell> cells = new ArrayList<>();
        if (append && Files.isRegularFile(csv)) {
            for (Cell c : readCsv(csv, mix)) {
                if (!(policies.contains(c.policy()) && Arrays.stream(loads).anyMatch(l -> l == c.load()))) {
                    cells.add(c);
                }
            }
        }
        var thinkingModel = thinkingTemplateCopy(model, outDir);
        var options = new Configuration();
        options.set(Qwen3Options.MODEL, thinkingModel.location());
        options.set(Qwen3Options.THREADS, threads);
        options.set(Qwen3Options.MAX_IN_FLIGHT, 1024); // the queue lives in the engine (EDF), not in Kafka
        options.set(Qwen3Options.MAX_BATCH_SEQUENCES, maxBatch);
        options.set(Qwen3Options.ANSWER_RESERVE_TOKENS, answerTokens);
        options.set(Qwen3Options.DEFAULT_MAX_TOKENS, maxTokens);
        var json = new ObjectMapper();
        try (var kafka = EmbeddedKafka.start()) {
            var bench = new Bench(kafka, options, answerTokens, maxTokens);
            // the first burst also warms up the JIT for Flink, Kafka and the operator: the better of two counts;
            // with --capacity one burst still runs, so that the first cell does not run cold
            double first = bench.capacity(capacityRecords);
            double capacity = fixedCapacity != null ? fixedCapacity : Math.max(first, bench.capacity(capacityRecords));
            System.err.printf(Locale.ROOT, "sla-bench: capacity %.2f records/s (no thinking, %d answer tokens); model %s, %s%n",
                    capacity, answerTokens, model, thinkingModel.note());
            for (String policy : policies) {
                for (double load : loads) {
                    Cell c = bench.cell(policy, load, load * capacity, duration, drain, mix, random);
                    cells.add(c);
                    var line = new LinkedHashMap<String, Object>();
                    line.put("policy", policy);
                    line.put("load", load);
                    line.put("offered_per_s", round(c.offeredPerSecond()));
                    line.put("capacity_per_s", round(capacity));
                    line.put("sent", c.sent());
                    line.put("answered", c.answered());
                    line.put("sla_met", c.met());
                    line.put("hit_rate", round(c.hitRate()));
                    var classes = new LinkedHashMap<String, Object>();
                    c.byClass().forEach((sla, n) -> classes.put(Long.toString(sla),
                            Map.of("sent", n[0], "sla_met", n[1], "hit_rate", round(n[0] == 0 ? 0 : n[1] / (double) n[0]))));
                    line.put("classes", classes);
                    line.put("p50_latency_ms", Math.round(c.p50()));
                    line.put("p95_latency_ms", Math.round(c.p95()));
                    line.put("p99_latency_ms", Math.round(c.p99()));
                    line.put("mean_granted_budget", round(c.meanBudget()));
                    line.put("mean_thinking_tokens", round(c.meanThinking()));
                    line.put("records_per_s", round(c.recordsPerSecond()));
                    line.put("model", model);
                    line.put("template", thinkingModel.note());
                    out.println(json.writeValueAsString(line));
                    out.flush();
                }
            }
        }
        writeCsv(csv, cells, mix);
        plot(outDir.resolve("sla-bench.png"), cells, cells.stream().map(Cell::policy).distinct().toList());
        System.err.println("sla-bench: wrote " + csv + " and " + outDir.resolve("sla-bench.png"));
        return 0;
    }

    /** The record's thinking_budget for a policy: null lets the SLA policy decide. */
    static Integer budgetOf(String policy) {
        return switch (policy) {
            case "sla" -> null;
            case "unlimited" -> -1;
            default -> {
                try {
                    int b = Integer.parseInt(policy);
                    if (b < 0) {
                        throw new NumberFormatException();
                    }
                    yield b;
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("policy '" + policy + "' is not 'sla', 'unlimited' or a budget >= 0");
                }
            }
        };
    }

    static List<SlaClass> parseMix(String mix) {
        List<SlaClass> classes = new ArrayList<>();
        for (String part : mix.split(",")) {
            String[] kv = part.split(":");
            if (kv.length != 2) {
                throw new IllegalArgumentException("--mix: '" + part + "' is not SLA_MS:SHARE");
            }
            classes.add(new SlaClass(Long.parseLong(kv[0].strip()), Double.parseDouble(kv[1].strip())));
        }
        double total = classes.stream().mapToDouble(SlaClass::share).sum();
        if (classes.stream().anyMatch(c -> c.slaMs() < 1 || !(c.share() > 0)) || Math.abs(total - 1) > 1e-6) {
            throw new IllegalArgumentException("--mix: SLAs must be >= 1 ms and shares > 0 adding up to 1, got " + mix);
        }
        return classes;
    }

    record ThinkingModel(String location, String note) {}

    /**
     * The model as a Thinking-2507 one: a directory whose template already opens the think block is
     * used as it is; any other directory gets a copy under outDir with the think-opening generation
     * prompt in tokenizer_config.json and links to every other file.
     */
    static ThinkingModel thinkingTemplateCopy(String model, Path outDir) throws Exception {
        Path dir = ModelLocator.resolve(model);
        Path config = dir.resolve("tokenizer_config.json");
        if (!Files.isDirectory(dir) || !Files.isRegularFile(config)) {
            return new ThinkingModel(model, "the model's own template");
        }
        var tree = (com.fasterxml.jackson.databind.node.ObjectNode) ModelConfig.JSON.readTree(config.toFile());
        String template = tree.path("chat_template").asText("");
        if (ChatTemplate.opensThinkBlock(template)) {
            return new ThinkingModel(model, TEMPLATE_NOTE);
        }
        String plain = "'<|im_start|>assistant\\n'";
        if (!template.contains(plain)) {
            throw new IllegalArgumentException(config + ": chat_template has no generation prompt " + plain + " to open the think block in");
        }
        Path copy = outDir.resolve("model-thinking-2507");
        if (Files.exists(copy)) {
            try (var old = Files.list(copy)) {
                for (Path p : old.toList()) {
                    Files.delete(p);
                }
            }
        }
        Files.createDirectories(copy);
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                if (!f.getFileName().equals(config.getFileName())) {
                    Files.createSymbolicLink(copy.resolve(f.getFileName()), f.toAbsolutePath());
                }
            }
        }
        tree.put("chat_template", template.replace(plain, "'<|im_start|>assistant\\n<think>\\n'"));
        ModelConfig.JSON.writeValue(copy.resolve(config.getFileName()).toFile(), tree);
        return new ThinkingModel(copy.toString(), TEMPLATE_NOTE + ", a copy of " + dir.getFileName());
    }

    /** Runs jobs against one Kafka broker. */
    static final class Bench {
        private final EmbeddedKafka kafka;
        private final Configuration options;
        private final int answerTokens;
        private final int maxTokens;
        private int run;

        Bench(EmbeddedKafka kafka, Configuration options, int answerTokens, int maxTokens) {
            this.kafka = kafka;
            this.options = options;
            this.answerTokens = answerTokens;
            this.maxTokens = maxTokens;
        }

        /** Records/s answered without thinking, from a burst sent once the engine is ready. */
        double capacity(int records) throws Exception {
            var result = runJob("capacity", (producer, topic, sent) -> {
                for (int i = 0; i < records; i++) {
                    send(producer, topic, sent, record("c" + i, 0, 600_000));
                }
                return true;
            }, records, 600);
            double seconds = (result.lastEmitMillis() - result.firstSendMillis()) / 1000.0;
            if (result.completions().size() < records || seconds <= 0) {
                throw new IllegalStateException("capacity run: " + result.completions().size() + " of " + records + " answered");
            }
            return records / seconds;
        }

        Cell cell(String policy, double load, double rate, double duration, double drain, List<SlaClass> mix, Random random)
                throws Exception {
            Integer budget = budgetOf(policy);
            var result = runJob(policy + "@" + load, (producer, topic, sent) -> {
                long start = System.nanoTime();
                double t = 0;
                int i = 0;
                while (true) {
                    t += -Math.log(1 - random.nextDouble()) / rate; // exponential gaps: Poisson arrivals
                    if (t >= duration) {
                        return true;
                    }
                    long wait = start + (long) (t * 1e9) - System.nanoTime();
                    if (wait > 0) {
                        Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                    }
                    double u = random.nextDouble(), acc = 0;
                    long sla = mix.getLast().slaMs();
                    for (SlaClass c : mix) {
                        acc += c.share();
                        if (u < acc) {
                            sla = c.slaMs();
                            break;
                        }
                    }
                    send(producer, topic, sent, record("r" + i++, budget, sla));
                }
            }, Integer.MAX_VALUE, duration + drain);
            Map<Long, int[]> byClass = new LinkedHashMap<>();
            mix.forEach(c -> byClass.put(c.slaMs(), new int[2]));
            result.sent().values().forEach(s -> byClass.get(s.slaMs())[0]++);
            int met = 0;
            List<Double> latencies = new ArrayList<>();
            double budgets = 0, thinking = 0;
            for (CompletionRecord c : result.completions().values()) {
                Sent s = result.sent().get(c.id);
                latencies.add((double) c.latencyMs + (s.slaMs() - c.slaMs)); // from the send, not the operator's arrival
                if (c.slaMet) {
                    met++;
                    byClass.get(s.slaMs())[1]++;
                }
                budgets += c.thinkingBudget;
                thinking += c.thinkingTokens;
            }
            int n = result.completions().size();
            latencies.sort(null);
            double span = (result.lastEmitMillis() - result.firstSendMillis()) / 1000.0;
            return new Cell(policy, load, rate, result.sent().size(), n, met, byClass, percentile(latencies, 50),
                    percentile(latencies, 95), percentile(latencies, 99), n == 0 ? 0 : budgets / n, n == 0 ? 0 : thinking / n,
                    span <= 0 ? 0 : n / span);
        }

        private PromptRecord record(String id, Integer budget, long slaMs) {
            var p = PromptRecord.of(id, Quickstart.QUESTIONS[Math.floorMod(id.hashCode(), Quickstart.QUESTIONS.length)]
                    + " (request " + id + ")");
            p.thinkingBudget = budget;
            p.maxTokens = maxTokens;
            p.options = new java.util.HashMap<>(Map.of("max_answer_tokens", Integer.toString(answerTokens)));
            p.slaMs = slaMs; // replaced by deadline_ms when sent
            return p;
        }

        private static void send(KafkaProducer<byte[], byte[]> producer, String topic, Map<String, Sent> sent, PromptRecord p) {
            long now = System.currentTimeMillis();
            sent.put(p.id, new Sent(p.slaMs, now));
            p.deadlineMs = now + p.slaMs; // the SLA counts from the send, whatever Kafka and Flink add
            p.slaMs = null;
            producer.send(new ProducerRecord<>(topic, p.id.getBytes(StandardCharsets.UTF_8), RecordCodec.encodePromptAvro(p)));
        }

        interface Producing {
            /** Sends records; returns when done. */
            boolean produce(KafkaProducer<byte[], byte[]> producer, String topic, Map<String, Sent> sent) throws Exception;
        }

        record Sent(long slaMs, long sendMillis) {}

        record JobResult(Map<String, Sent> sent, Map<String, CompletionRecord> completions, long firstSendMillis,
                         long lastEmitMillis) {}

        /**
         * One job on fresh topics: waits for the engine, runs the producer, reads completions until
         * every record sent is answered or {@code limitSeconds} after the engine was ready, then
         * cancels the job and waits until its engine is closed.
         */
        private JobResult runJob(String name, Producing producing, int expected, double limitSeconds) throws Exception {
            int k = run++;
            var topics = new KafkaInferenceJob.Topics(kafka.bootstrapServers(), "prompts-" + k, "completions-" + k,
                    "dead-letters-" + k, "sla-bench-" + k);
            kafka.createTopics(2, topics.input(), topics.output(), topics.deadLetters());
            var cluster = new Configuration();
            cluster.set(TaskManagerOptions.NUM_TASK_SLOTS, 2);
            var env = StreamExecutionEnvironment.createLocalEnvironment(2, cluster);
            env.enableCheckpointing(500);
            KafkaInferenceJob.addPipeline(env, topics, options, Qwen3Kafka.Format.AVRO, false);
            JobClient job = env.executeAsync("sla-bench " + name);
            while (TaskManagerEngines.openEngines() == 0) {
                if (job.getJobStatus().get().isTerminalState()) {
                    throw new IllegalStateException("sla-bench: job " + name + " ended before its engine was ready");
                }
                Thread.sleep(20);
            }
            Map<String, Sent> sent = new ConcurrentHashMap<>();
            Map<String, CompletionRecord> completions = new ConcurrentHashMap<>();
            var producing_done = new AtomicBoolean();
            var failure = new java.util.concurrent.atomic.AtomicReference<Exception>();
            var props = new Properties();
            props.put("bootstrap.servers", kafka.bootstrapServers());
            props.put("linger.ms", "0");
            long ready = System.nanoTime();
            var producer = Thread.ofPlatform().name("sla-bench-producer").start(() -> {
                try (var p = new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
                    producing.produce(p, topics.input(), sent);
                } catch (Exception e) {
                    failure.set(e);
                } finally {
                    producing_done.set(true);
                }
            });
            long[] lastEmit = {0};
            kafka.readCommitted(List.of(topics.output()), Duration.ofSeconds((long) limitSeconds + 60), r -> {
                CompletionRecord c = RecordCodec.decodeCompletionAvro(r.value());
                completions.put(c.id, c);
                Sent s = sent.get(c.id);
                lastEmit[0] = Math.max(lastEmit[0], s.sendMillis() + c.latencyMs + (s.slaMs() - c.slaMs));
            }, () -> producing_done.get() && (completions.size() >= Math.min(expected, sent.size())
                    || System.nanoTime() - ready > limitSeconds * 1e9));
            producer.join();
            job.cancel().get();
            while (TaskManagerEngines.openEngines() > 0) {
                Thread.sleep(20); // the next job opens an engine of its own
            }
            if (failure.get() != null) {
                throw failure.get();
            }
            long firstSend = sent.values().stream().mapToLong(Sent::sendMillis).min().orElse(0);
            return new JobResult(Map.copyOf(sent), Map.copyOf(completions), firstSend, lastEmit[0]);
        }
    }

    static double percentile(List<Double> sorted, double p) {
        if (sorted.isEmpty()) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(p / 100 * sorted.size()) - 1;
        return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
    }

    private static double round(double v) {
        return Math.round(v * 1000) / 1000.0;
    }

    static String csvHeader(List<SlaClass> mix) {
        String classes = mix.stream().map(c -> "sent_" + c.slaMs() + "ms,sla_met_" + c.slaMs() + "ms").collect(Collectors.joining(","));
        return "policy,load,offered_per_s,sent,answered,sla_met,hit_rate," + classes
                + ",p50_latency_ms,p95_latency_ms,p99_latency_ms,mean_granted_budget,mean_thinking_tokens,records_per_s";
    }

    static void writeCsv(Path file, List<Cell> cells, List<SlaClass> mix) throws Exception {
        var lines = new ArrayList<String>();
        lines.add(csvHeader(mix));
        for (Cell c : cells) {
            String perClass = c.byClass().values().stream().map(n -> n[0] + "," + n[1]).collect(Collectors.joining(","));
            lines.add(String.format(Locale.ROOT, "%s,%s,%.3f,%d,%d,%d,%.4f,%s,%d,%d,%d,%.2f,%.2f,%.3f", c.policy(), c.load(),
                    c.offeredPerSecond(), c.sent(), c.answered(), c.met(), c.hitRate(), perClass, Math.round(c.p50()),
                    Math.round(c.p95()), Math.round(c.p99()), c.meanBudget(), c.meanThinking(), c.recordsPerSecond()));
        }
        Files.write(file, lines);
    }

    /** The cells of a CSV that {@link #writeCsv} wrote with the same SLA mix. */
    static List<Cell> readCsv(Path file, List<SlaClass> mix) throws Exception {
        List<String> lines = Files.readAllLines(file);
        if (lines.isEmpty() || !lines.getFirst().equals(csvHeader(mix))) {
            throw new IllegalArgumentException(file + ": not a sla-bench CSV of this --mix (expected the header " + csvHeader(mix) + ")");
        }
        List<Cell> cells = new ArrayList<>();
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split(",");
            int k = 7;
            Map<Long, int[]> byClass = new LinkedHashMap<>();
            for (SlaClass c : mix) {
                byClass.put(c.slaMs(), new int[] {Integer.parseInt(f[k]), Integer.parseInt(f[k + 1])});
                k += 2;
            }
            cells.add(new Cell(f[0], Double.parseDouble(f[1]), Double.parseDouble(f[2]), Integer.parseInt(f[3]),
                    Integer.parseInt(f[4]), Integer.parseInt(f[5]), byClass, Double.parseDouble(f[k]), Double.parseDouble(f[k + 1]),
                    Double.parseDouble(f[k + 2]), Double.parseDouble(f[k + 3]), Double.parseDouble(f[k + 4]), Double.parseDouble(f[k + 5])));
        }
        return cells;
    }

    /** Hit rate (top) and mean thinking tokens (bottom) against load, a line per policy. */
    static void plot(Path file, List<Cell> cells, List<String> policies) throws Exception {
        var hits = new XYSeriesCollection();
        var thinking = new XYSeriesCollection();
        for (String policy : policies) {
            String label = policy.equals("sla") || policy.equals("unlimited") ? policy : "budget " + policy;
            var h = new XYSeries(label);
            var t = new XYSeries(label);
            cells.stream().filter(c -> c.policy().equals(policy)).forEach(c -> {
                h.add(c.load() * 100, c.hitRate() * 100);
                t.add(c.load() * 100, c.meanThinking());
            });
            hits.addSeries(h);
            thinking.addSeries(t);
        }
        var hitAxis = new NumberAxis("SLA hit rate (%)");
        hitAxis.setRange(0, 101);
        var thinkingAxis = new NumberAxis("mean thinking tokens");
        var loadAxis = new NumberAxis("load (% of capacity without thinking)");
        loadAxis.setAutoRangeIncludesZero(false);
        var combined = new CombinedDomainXYPlot(loadAxis);
        combined.add(new XYPlot(hits, null, hitAxis, renderer(policies, true)), 1);
        combined.add(new XYPlot(thinking, null, thinkingAxis, renderer(policies, false)), 1);
        var chart = new JFreeChart("SLA adherence under load (policy 'sla' vs fixed thinking budgets)",
                JFreeChart.DEFAULT_TITLE_FONT, combined, true);
        ChartUtils.saveChartAsPNG(file.toFile(), chart, 900, 800);
    }

    /** The same colour per policy in both panels; the legend once. */
    private static XYLineAndShapeRenderer renderer(List<String> policies, boolean inLegend) {
        java.awt.Color[] colours = {new java.awt.Color(0xd62728), new java.awt.Color(0x1f77b4), new java.awt.Color(0x2ca02c),
                new java.awt.Color(0xff7f0e), new java.awt.Color(0x9467bd), new java.awt.Color(0x7f7f7f),
                new java.awt.Color(0x8c564b), new java.awt.Color(0x17becf)};
        var r = new XYLineAndShapeRenderer(true, true);
        for (int i = 0; i < policies.size(); i++) {
            r.setSeriesStroke(i, new BasicStroke(policies.get(i).equals("sla") ? 3.5f : 1.5f));
            r.setSeriesPaint(i, colours[i % colours.length]);
        }
        r.setDefaultSeriesVisibleInLegend(inLegend);
        return r;
    }
}
