package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.model.ModelFormatException;
import io.flinkqwen3.tensor.NativeMemory;
import io.flinkqwen3.tensor.Parallel;
import io.flinkqwen3.testing.CorruptModels;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Opening, closing and cancelling: nothing leaks, nothing is unmapped under a running step. */
class EngineLifecycleTest {
    @BeforeAll
    static void startTheSharedTestPool() {
        assertEquals(2, Fixtures.PARALLEL.threads()); // its worker lives for the whole run: part of every baseline
    }

    /** Live threads the engine starts: its scheduler and the kernel pool's workers. */
    static long engineThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(Thread::isAlive)
                .map(Thread::getName).filter(n -> n.matches("qwen3-kernel-\\d+|qwen3-engine-scheduler")).count();
    }

    /** The engine threads alive once the count has stopped falling (workers of pools closed earlier take a moment to leave). */
    static long baselineThreads() throws InterruptedException {
        long count = engineThreads(), deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        for (int stable = 0; stable < 5 && System.nanoTime() < deadline; ) {
            Thread.sleep(50);
            long now = engineThreads();
            stable = now == count ? stable + 1 : 0;
            count = now;
        }
        return count;
    }

    /** Waits (bounded) for closed pools' workers to leave: they exit once they see the pool closed. */
    static long engineThreadsSettled(long atMost) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (engineThreads() > atMost && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        return engineThreads();
    }

    static EngineOptions options(int maxContext) {
        return new EngineOptions(2, 8, 512, maxContext);
    }

    @Test
    void aFailedOpenClosesWhatItOpened(@TempDir Path dir) throws Exception {
        Path corrupt = CorruptModels.withoutFinalNorm(dir.resolve("model"));
        var good = Qwen3Engine.open(Fixtures.DENSE.toString(), options(64));
        io.flinkqwen3.tensor.KernelCheck.background().join(); // its matrices would count as leaked below
        long packed = NativeMemory.mappedBytes();
        good.close();
        long threadsBefore = baselineThreads();
        long mappedBefore = NativeMemory.mappedBytes();
        assertTrue(packed - mappedBefore > 15_000_000, "an open model has its packed copies mapped: "
                + (packed - mappedBefore) + " bytes");
        for (int i = 0; i < 5; i++) {
            var e = assertThrows(ModelFormatException.class, () -> Qwen3Engine.open(corrupt.toString(), options(64)));
            assertTrue(e.getMessage().contains("model.norm.weight"), e.getMessage());
        }
        assertEquals(threadsBefore, engineThreadsSettled(threadsBefore), "no scheduler or kernel thread left behind");
        long leaked = NativeMemory.mappedBytes() - mappedBefore;
        assertTrue(leaked < 1_000_000, "five failed opens left " + leaked + " bytes mapped (one model packs "
                + (packed - mappedBefore) + ")");
    }

    @Test
    void aNonFiniteBlockScaleIsRefusedNamingTensorRowAndColumns(@TempDir Path dir) throws Exception {
        Path corrupt = CorruptModels.withNanScale(dir);
        try (var checkpoint = io.flinkqwen3.model.Checkpoints.open(corrupt); var parallel = new io.flinkqwen3.tensor.Parallel(2)) {
            long mappedBefore = NativeMemory.mappedBytes();
            var e = assertThrows(ModelFormatException.class, () -> Qwen3Model.load(checkpoint, parallel, 0));
            assertTrue(e.getMessage().startsWith(corrupt.getFileName() + ":blk.0.attn_q.weight: tensor 'model.layers.0.self_attn.q_proj.weight'"
                    + " (Q8_0): row 0, the block of columns from 0: its scale is NaN, not a finite number"), e.getMessage());
            // the packed copies live in slabs of 256 MiB; other tests' background kernel checks map a few MB
            assertTrue(NativeMemory.mappedBytes() - mappedBefore < 64 << 20, "the slabs of the copies packed before it were unmapped");
        }
    }

    /** A NaN weight is refused where it is, whether the weights are loaded as they are or quantized at load. */
    @Test
    void aNonFiniteWeightIsRefusedAsItIsAndQuantized(@TempDir Path dir) throws Exception {
        Path corrupt = CorruptModels.withNanWeight(dir);
        String expected = corrupt.getFileName() + ":blk.0.attn_q.weight: tensor 'model.layers.0.self_attn.q_proj.weight' (BF16):"
                + " row 0, column 0: the weight is NaN, not a finite number";
        for (var target : new io.flinkqwen3.tensor.DType[] {null, io.flinkqwen3.tensor.DType.Q8_0, io.flinkqwen3.tensor.DType.Q4_0}) {
            try (var parallel = new io.flinkqwen3.tensor.Parallel(2);
                    io.flinkqwen3.model.Checkpoint source = io.flinkqwen3.model.Checkpoints.open(corrupt);
                    var checkpoint = target == null ? source : new io.flinkqwen3.model.QuantizedCheckpoint(source, target, parallel)) {
                var e = assertThrows(ModelFormatException.class, () -> Qwen3Model.load(checkpoint, parallel, 0));
                assertTrue(e.getMessage().contains(expected), target + ": " + e.getMessage());
            }
        }
    }

    @Test
    void aContextShorterThanTheWarmUpPromptStillOpens() throws Exception {
        // the warm-up used 8-token prompts: a max-context of 8 failed every open, and left the scheduler running
        long threadsBefore = baselineThreads();
        for (int context : new int[] {2, 8}) {
            try (var engine = Qwen3Engine.open(Fixtures.DENSE.toString(), options(context))) {
                var result = engine.generate(GenerationRequest.builder().promptTokens(new int[] {9707}).maxTokens(4)
                        .sampling(SamplingParams.greedy()).build());
                assertEquals(Math.min(4, context - 1), result.outputTokens().length, "context length " + context);
            }
        }
        assertEquals(threadsBefore, engineThreadsSettled(threadsBefore));
    }

    @Test
    void closeStopsTheRunningStepThenUnmapsAndFailsWhatIsLeft() throws Exception {
        long threadsBefore = baselineThreads();
        for (int round = 0; round < 3; round++) {
            var engine = Qwen3Engine.open(Fixtures.MOE.toString(), options(0));
            long mappedOpen = NativeMemory.mappedBytes();
            int[] prompt = engine.tokenizer().encode("Tell me a long story. ".repeat(100));
            var running = engine.submit(GenerationRequest.builder().promptTokens(prompt).maxTokens(100_000)
                    .sampling(SamplingParams.greedy()).build(), Long.MAX_VALUE);
            while (engine.metrics().generatedTokens() < 3 + round * 5L) {
                Thread.sleep(1); // steps are running
            }
            var closing = CompletableFuture.runAsync(engine::close);
            closing.get(60, TimeUnit.SECONDS);
            var failed = assertThrows(CompletionException.class, running::join);
            assertEquals("engine closed before the request finished", failed.getCause().getMessage());
            assertTrue(engine.isClosed());
            assertThrows(IllegalStateException.class, () -> engine.submit(GenerationRequest.builder().user("x").build(), 0));
            assertTrue(NativeMemory.mappedBytes() < mappedOpen, "the packed weights were unmapped when close returned");
        }
        assertEquals(threadsBefore, engineThreadsSettled(threadsBefore), "the scheduler has ended when close returns");
    }

    @Test
    void closingFromACompletionCallbackDoesNotDeadlock() throws Exception {
        var engine = Qwen3Engine.open(Fixtures.DENSE.toString(), options(64));
        var done = engine.submit(GenerationRequest.builder().promptTokens(new int[] {1, 2, 3}).maxTokens(40)
                .sampling(SamplingParams.greedy()).build(), Long.MAX_VALUE).thenRun(engine::close); // on the scheduler thread
        done.get(60, TimeUnit.SECONDS);
        assertTrue(engine.isClosed());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.isAlive() && t.getName().equals("qwen3-engine-scheduler"))
                && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertFalse(Thread.getAllStackTraces().keySet().stream()
                .anyMatch(t -> t.isAlive() && t.getName().equals("qwen3-engine-scheduler")), "the scheduler shut itself down");
    }

    @Test
    void aCancelledRequestLeavesTheBatch() throws Exception {
        try (var engine = Qwen3Engine.open(Fixtures.MOE.toString(), options(0))) {
            var request = GenerationRequest.builder().promptTokens(new int[] {1, 2, 3, 4}).maxTokens(100_000)
                    .sampling(SamplingParams.greedy()).build();
            var cancelled = engine.submit(request, Long.MAX_VALUE);
            long start = engine.metrics().generatedTokens();
            while (engine.metrics().generatedTokens() < start + 3) {
                Thread.sleep(1);
            }
            assertTrue(cancelled.cancel(false));
            long atCancel = engine.metrics().generatedTokens();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (engine.metrics().active() + engine.metrics().queued() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertEquals(0, engine.metrics().active(), "the cancelled request no longer takes a batch slot");
            long after = engine.metrics().generatedTokens();
            Thread.sleep(200);
            assertEquals(after, engine.metrics().generatedTokens(), "nothing is generated for it any more");
            assertTrue(after - atCancel <= 2, (after - atCancel) + " tokens generated after the cancel (the step running then)");
            var next = engine.generate(GenerationRequest.builder().promptTokens(new int[] {5, 6}).maxTokens(3)
                    .sampling(SamplingParams.greedy()).build());
            assertEquals(3, next.outputTokens().length, "the engine goes on with other requests");
        }
    }

    @Test
    void threadCountsThatMakeNoSenseAreRefused() {
        int max = Parallel.maxThreads();
        int processors = Runtime.getRuntime().availableProcessors();
        assertEquals(Math.min(4 * processors, Math.max(256, processors)), max);
        for (int threads : new int[] {0, -1, max + 1, 5000, Integer.MAX_VALUE}) {
            var e = assertThrows(IllegalArgumentException.class, () -> new EngineOptions(threads, 8, 512, 0));
            assertEquals("threads must be between 1 and " + max + " (4 per available processor, " + processors
                    + " here, at most 256), got " + threads, e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new Parallel(threads));
        }
        assertEquals(max, new EngineOptions(max, 8, 512, 0).threads());
        assertEquals(processors, EngineOptions.defaults().threads(), "the default is always allowed");
    }
}
