package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.runtime.Qwen3Engine;
import io.flinkqwen3.testing.CorruptModels;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.JobStatus;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.runtime.execution.SuppressRestartsException;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * The operator's life in a task manager: a model that cannot be loaded fails the job at once
 * (whatever the restart strategy), and an operator that closes takes its requests out of the
 * shared engine.
 */
class OperatorLifecycleTest {
    @RegisterExtension
    static final MiniClusterExtension CLUSTER = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(1).build());

    /** Runs a job whose restart strategy allows 1,000 restarts; returns its final status and failure. */
    static Throwable runUntilItEnds(Qwen3Inference.Builder inference) throws Exception {
        var config = new Configuration();
        config.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
        config.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 1000);
        config.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(100));
        var env = StreamExecutionEnvironment.getExecutionEnvironment(config);
        env.setParallelism(1);
        var prompts = env.fromData(TypeInformation.of(PromptRecord.class), PromptRecord.of("a", "hello"), PromptRecord.of("b", "hi"));
        inference.build().apply(prompts).sinkTo(new DiscardingSink<>());
        JobClient job = env.executeAsync("model that cannot be loaded");
        try {
            job.getJobExecutionResult().get(2, TimeUnit.MINUTES); // 1,000 restarts of a model load would take far longer
            throw new AssertionError("the job finished");
        } catch (ExecutionException e) {
            assertEquals(JobStatus.FAILED, job.getJobStatus().get());
            return e;
        }
    }

    static List<Throwable> chain(Throwable e) {
        List<Throwable> chain = new ArrayList<>();
        for (Throwable t = e; t != null && !chain.contains(t); t = t.getCause()) {
            chain.add(t);
        }
        return chain;
    }

    static String messages(Throwable e) {
        return String.join(" <- ", chain(e).stream().map(String::valueOf).toList());
    }

    @Test
    void aModelThatCannotBeLoadedFailsTheJobAtOnceWithTheLoadersMessage(@TempDir Path dir) throws Exception {
        Path corrupt = CorruptModels.withoutFinalNorm(dir.resolve("corrupt"));
        Path missing = dir.resolve("no-such-model");
        Path noTokenizer = Files.createDirectory(dir.resolve("no-tokenizer")); // loads, but no record could ever be read
        try (var files = Files.list(Fixtures.MOE)) {
            for (Path f : files.filter(f -> !f.getFileName().toString().startsWith("tokenizer")).toList()) {
                Files.copy(f, noTokenizer.resolve(f.getFileName()));
            }
        }
        int tooManyThreads = io.flinkqwen3.tensor.Parallel.maxThreads() + 1; // passes the build (<= 256), not the task manager
        record Case(Qwen3Inference.Builder job, String loaderSays) {}
        var cases = List.of(
                new Case(Qwen3Inference.builder().model(corrupt.toString()).threads(2), "tensor 'model.norm.weight'"),
                new Case(Qwen3Inference.builder().model(missing.toString()).threads(2),
                        "model location '" + missing + "' is neither an existing directory or .gguf file"),
                new Case(Qwen3Inference.builder().model(noTokenizer.toString()).threads(2), "cannot be used: it has no tokenizer.json"
                        + " (or tokenizer.ggml.* metadata): the Flink operator needs a tokenizer to read prompts; put the model's"
                        + " tokenizer.json beside config.json"),
                new Case(Qwen3Inference.builder().model(Fixtures.DENSE.toString()).threads(tooManyThreads),
                        "threads must be between 1 and " + (tooManyThreads - 1)));
        for (var c : cases) {
            long start = System.nanoTime();
            Throwable failure = runUntilItEnds(c.job());
            List<Throwable> chain = chain(failure);
            assertTrue(chain.stream().anyMatch(t -> t instanceof SuppressRestartsException), messages(failure));
            var unavailable = chain.stream().filter(t -> t instanceof TaskManagerEngines.ModelUnavailableException).findFirst()
                    .orElseThrow(() -> new AssertionError(messages(failure)));
            assertTrue(unavailable.getMessage().startsWith("Qwen3 model '"), unavailable.getMessage());
            assertTrue(unavailable.getMessage().contains(c.loaderSays()), unavailable.getMessage());
            assertTrue(!unavailable.getMessage().contains("(null)"), unavailable.getMessage());
            System.out.printf("failed without restarts in %.1f s: %s%n", (System.nanoTime() - start) / 1e9, unavailable.getMessage());
        }
        assertEquals(0, TaskManagerEngines.openEngines(), "the engine without a tokenizer was closed again");
    }

    @Test
    void threadCountsThatMakeNoSenseAreRefusedWhenTheJobIsBuilt() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> Qwen3Inference.builder().model(Fixtures.DENSE.toString()).threads(5000).build());
        assertTrue(e.getMessage().startsWith("option 'qwen3.engine.threads' must be between 1 and "
                + Math.max(256, Runtime.getRuntime().availableProcessors()) + " (and at most 4 per processor of the task manager),"
                + " got 5000"), e.getMessage());
    }

    @Test
    void aClosingOperatorTakesItsRequestsOutOfTheSharedEngine() throws Exception {
        var o = Qwen3InferenceOperatorTest.options();
        o.set(Qwen3Options.MAX_CONTEXT, 0); // the model's 4,096 positions: these requests would run for a long time
        o.set(Qwen3Options.MAX_IN_FLIGHT, 8);
        Qwen3Engine engine = TaskManagerEngines.acquire(Fixtures.MOE.toString(), Qwen3Options.engineOptions(o));
        var leaving = Qwen3InferenceOperatorTest.harness(o);
        try (var staying = Qwen3InferenceOperatorTest.harness(o)) {
            leaving.initializeEmptyState();
            leaving.open();
            staying.initializeEmptyState();
            staying.open();
            for (int i = 0; i < 4; i++) {
                var record = PromptRecord.of("long-" + i, "Tell me everything about item " + i);
                record.maxTokens = 100_000;
                leaving.processElement(record, 0);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (engine.metrics().active() < 4 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(4, engine.metrics().active(), "the four requests run");
            long generated = engine.metrics().generatedTokens();
            leaving.close(); // failover or cancel: the operator goes, the task manager's engine stays
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (engine.metrics().active() + engine.metrics().queued() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(0, engine.metrics().active() + engine.metrics().queued(), "its requests left the engine");
            assertTrue(engine.metrics().generatedTokens() - generated < 4 * 20,
                    "at most the steps running at close generated for them: " + (engine.metrics().generatedTokens() - generated));
            staying.processElement(PromptRecord.of("short", "Hello"), 0);
            staying.endInput();
            assertEquals(List.of("short"), staying.extractOutputValues().stream().map(c -> c.id).toList(),
                    "the other operator goes on with the same engine");
        } finally {
            TaskManagerEngines.release(engine);
        }
        assertEquals(0, TaskManagerEngines.openEngines());
    }
}
