package io.flinkqwen3.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.cli.Commands;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** The launchers' command lines (examples/bin/*): help on stdout, usage errors exit 2, an unreachable broker ends the job at once. */
class LaunchersCommandLineTest {
    record Run(int code, String out, String err) {}

    static Run run(Supplier<Object> command, String... args) {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        int code = Commands.execute(command.get(), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8), args);
        return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    static Run quickstart(String... args) {
        var out = new ByteArrayOutputStream();
        var err = new ByteArrayOutputStream();
        PrintStream saved = System.err;
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = Quickstart.run(args, new PrintStream(out, true, StandardCharsets.UTF_8));
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setErr(saved);
        }
    }

    @Test
    void helpGoesToStdoutWithExitZero() {
        Run q = quickstart("--help");
        assertEquals(0, q.code());
        assertTrue(q.out().startsWith("Usage: quickstart") && q.out().contains("--max-tokens=N"), q.out());
        assertEquals("", q.err());
        Run k = run(KafkaInferenceJob::new, "--help");
        assertEquals(0, k.code());
        assertTrue(k.out().startsWith("Usage: kafka-job") && k.out().contains("--bootstrap-servers=HOST:PORT"), k.out());
        Run t = run(ThroughputBenchmark::new, "--help");
        assertEquals(0, t.code());
        assertTrue(t.out().startsWith("Usage: throughput") && t.out().contains("--prompts-file=FILE"), t.out());
        for (var example : java.util.Map.<String, Supplier<Object>>of("classify", () -> new ClassifyExample(System.out),
                "enrich", () -> new EnrichExample(System.out), "sql", () -> new SqlExample(System.out)).entrySet()) {
            Run e = run(example.getValue(), "--help");
            assertEquals(0, e.code());
            assertTrue(e.out().startsWith("Usage: " + example.getKey()) && e.out().contains("--model=LOCATION")
                    && e.out().contains("--records=N"), e.out());
        }
    }

    @Test
    void typosAndBadNumbersAreUsageErrors() {
        Run typo = quickstart("--prompt", "2", "--max-token", "4");
        assertEquals(2, typo.code());
        assertTrue(typo.err().startsWith("quickstart: Unknown options: '--prompt', '2', '--max-token', '4'\nPossible solutions: --prompts"),
                typo.err());
        assertTrue(typo.err().contains("Usage: quickstart"), typo.err());
        assertEquals("", typo.out(), "nothing started");

        Run noModel = quickstart("--model", "/no/such/model");
        assertEquals(2, noModel.code(), "refused before Kafka and Flink start");
        assertTrue(noModel.err().startsWith("quickstart: --model: model location '/no/such/model' is neither an existing "
                + "directory or .gguf file nor a Hugging Face repo id like Qwen/Qwen3-0.6B"), noModel.err());

        Run zero = quickstart("--prompts", "0");
        assertEquals(2, zero.code());
        assertTrue(zero.err().startsWith("quickstart: --prompts expects a number of prompts from 1 to 100000, got 0"), zero.err());

        Run missing = run(KafkaInferenceJob::new, "--input", "p");
        assertEquals(2, missing.code());
        assertTrue(missing.err().startsWith("kafka-job: Missing required options: '--bootstrap-servers=HOST:PORT[,...]', "
                + "'--output=TOPIC'"), missing.err());
        Run format = run(KafkaInferenceJob::new, "--bootstrap-servers", "b:9092", "--input", "p", "--output", "c", "--format", "xml");
        assertEquals(2, format.code());
        assertTrue(format.err().contains("Invalid value for option '--format': expected one of [AVRO, JSON] (case-insensitive) but was 'xml'"),
                format.err());
        Run threads = run(ThroughputBenchmark::new, "--model", "Qwen/Qwen3-0.6B", "--threads", "0");
        assertEquals(2, threads.code());
        assertTrue(threads.err().startsWith("throughput: option '--threads' must be between 1 and"), threads.err());
        Run inFlight = run(ThroughputBenchmark::new, "--model", "Qwen/Qwen3-0.6B", "--max-in-flight", "0");
        assertEquals(2, inFlight.code());
        assertTrue(inFlight.err().startsWith("throughput: option '--max-in-flight' must be >= 1, got 0"), inFlight.err());
        Run prompts = run(ThroughputBenchmark::new, "--model", "Qwen/Qwen3-0.6B", "--prompts-file", "no-such-prompts.txt");
        assertEquals(2, prompts.code());
        assertTrue(prompts.err().startsWith("throughput: --prompts-file no-such-prompts.txt: no such file (one prompt per line)"),
                prompts.err());
    }

    @Test
    void anUnreachableBrokerEndsTheKafkaJobWithinItsTimeout() {
        long start = System.nanoTime();
        Run r = run(KafkaInferenceJob::new, "--bootstrap-servers", "localhost:1", "--input", "p", "--output", "c",
                "--broker-timeout-s", "2", "--model", "../../shared/fixtures/qwen3-moe-tiny");
        double seconds = (System.nanoTime() - start) / 1e9;
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().startsWith("kafka-job: no Kafka broker answered at localhost:1 within 2 s (check --bootstrap-servers, "
                + "or wait longer with --broker-timeout-s)"), r.err());
        assertFalse(r.err().strip().endsWith(": null"), "the reason is said, not a null message: " + r.err());
        System.out.printf("kafka-job gave up after %.1f s%n", seconds);
    }

    @Test
    void theReasonABrokerCallFailedIsAMessageOrTheFailuresClassNeverNull() {
        assertEquals("java.util.concurrent.TimeoutException", KafkaInferenceJob.reason(new java.util.concurrent.TimeoutException()));
        var refused = new org.apache.kafka.common.KafkaException("Connection refused");
        assertEquals("Connection refused", KafkaInferenceJob.reason(new java.util.concurrent.ExecutionException(refused)));
        assertEquals("Connection refused", KafkaInferenceJob.reason(new RuntimeException(null, refused)),
                "a failure without a message of its own says its cause's");
        assertEquals("org.apache.kafka.common.errors.TimeoutException", KafkaInferenceJob.reason(
                new java.util.concurrent.ExecutionException(new org.apache.kafka.common.errors.TimeoutException((String) null))));
    }
}
