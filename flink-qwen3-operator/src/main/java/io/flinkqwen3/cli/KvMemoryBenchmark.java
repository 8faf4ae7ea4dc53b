package io.flinkqwen3.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flinkqwen3.model.Checkpoint;
import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.model.ModelLocator;
import io.flinkqwen3.runtime.EngineMetrics;
import io.flinkqwen3.runtime.EngineOptions;
import io.flinkqwen3.runtime.GenerationRequest;
import io.flinkqwen3.runtime.GenerationResult;
import io.flinkqwen3.runtime.KvBlockPool;
import io.flinkqwen3.runtime.Qwen3Engine;
import io.flinkqwen3.runtime.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * What the KV cache memory budget does under load: {@code --sequences} requests that may each grow
 * to the whole {@code --context} are submitted at once to an engine with that many sequences and
 * the default (or given) KV cache memory; for {@code --seconds} it samples how many run, how many
 * wait for KV blocks, and the KV bytes in use, then closes the engine (the unfinished requests fail
 * with "engine closed"). Compares the budget with what the fp32 cache of max sequences x context
 * took before.
 */
@Command(name = "bench-kv", mixinStandardHelpOptions = true,
        description = {"KV cache memory under load: N requests that may each grow to the whole context, submitted at once; "
                + "prints the budget, the sequences running and waiting (backpressure), the KV bytes in use and the peak RSS.",
                "With --json one JSON object."})
final class KvMemoryBenchmark implements Callable<Integer> {
    @ParentCommand
    Qwen3Cli cli;
    @Spec
    CommandSpec spec;
    @Mixin
    Qwen3Cli.ModelOption model;
    @Mixin
    Qwen3Cli.ThreadsOption threads;
    @Mixin
    Qwen3Cli.QuantizeOption quantize;
    @Option(names = "--sequences", paramLabel = "N", defaultValue = "32",
            description = "Requests submitted, and the engine's max sequences (default: ${DEFAULT-VALUE}).")
    int sequences;
    @Option(names = "--context", paramLabel = "N", defaultValue = "4096",
            description = "The engine's max context; each request may grow to it (default: ${DEFAULT-VALUE}).")
    int context;
    @Option(names = "--prompt-tokens", paramLabel = "N", defaultValue = "64", description = "Prompt tokens per request (default: ${DEFAULT-VALUE}).")
    int promptTokens;
    @Option(names = "--kv-cache-memory", paramLabel = "MB", defaultValue = "0",
            description = "The engine's KV cache memory in MB (default: 0, the engine's default for the model).")
    long kvCacheMb;
    @Option(names = "--seconds", paramLabel = "S", defaultValue = "20", description = "How long to run (default: ${DEFAULT-VALUE}).")
    int seconds;
    @Option(names = "--json", description = "End with one JSON object of the results.")
    boolean json;

    @Override
    public Integer call() throws InterruptedException {
        Qwen3Cli.inRange(spec, "--sequences", sequences, 1, 1024, "a count from 1 to 1024");
        Qwen3Cli.inRange(spec, "--context", context, 2, 1 << 20, "a token count from 2 to " + (1 << 20));
        Qwen3Cli.inRange(spec, "--prompt-tokens", promptTokens, 1, context - 1, "a token count below --context");
        Commands.inRange(spec, "--kv-cache-memory", kvCacheMb, 0, 1L << 30, "0 (default) or a size in MB");
        Qwen3Cli.inRange(spec, "--seconds", seconds, 1, 3600, "1 to 3600 seconds");
        int maxContext;
        try (Checkpoint checkpoint = Checkpoints.open(ModelLocator.resolve(model.location))) { // the header only, no weights
            maxContext = checkpoint.config().maxPositionEmbeddings();
        }
        Qwen3Cli.inRange(spec, "--context", context, 2, maxContext, "a token count from 2 to the model's max_position_embeddings "
                + maxContext);
        var options = new EngineOptions(threads.threads, sequences, EngineOptions.defaults().maxBatchTokens(), context, quantize.type, 0)
                .withKvCache(kvCacheMb * 1_000_000, KvBlockPool.Precision.BF16, true);
        double rssBefore;
        int maxRunning = 0, minWaiting = Integer.MAX_VALUE;
        long generated;
        ObjectNode summary = Qwen3Cli.JSON.createObjectNode();
        try (var engine = Qwen3Engine.open(model.location, options)) {
            rssBefore = Benchmark.peakRssMb();
            EngineMetrics m = engine.metrics();
            long bytesPerToken = m.kvBlockBytes() / KvBlockPool.BLOCK_TOKENS;
            var random = new SplittableRandom(7);
            int vocab = Math.min(engine.config().vocabSize(), 150_000);
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int s = 0; s < sequences; s++) {
                futures.add(engine.submit(GenerationRequest.builder().promptTokens(Benchmark.randomTokens(random, promptTokens, vocab))
                        .maxTokens(context).sampling(SamplingParams.greedy()).build(), Long.MAX_VALUE));
            }
            long end = System.nanoTime() + seconds * 1_000_000_000L, generatedBefore = m.generatedTokens();
            while (System.nanoTime() < end) {
                Thread.sleep(1000);
                maxRunning = Math.max(maxRunning, m.active());
                minWaiting = Math.min(minWaiting, m.queued());
                cli.err.printf(Locale.ROOT, "bench-kv: %d running, %d waiting for KV blocks, KV in use %s of %s%n", m.active(),
                        m.queued(), KvBlockPool.formatBytes(m.kvBlocksInUse() * m.kvBlockBytes()),
                        KvBlockPool.formatBytes(m.kvBlocks() * m.kvBlockBytes()));
            }
            generated = m.generatedTokens() - generatedBefore;
            long budget = m.kvBlocks() * m.kvBlockBytes();
            long fp32Before = 2L * bytesPerToken * sequences * context; // fp32: twice the bf16 bytes per position
            // a request's positions: its whole context, unless the pool holds fewer (the engine caps it there)
            int reserved = (int) Math.min(engine.contextLength(), (long) m.kvBlocks() * KvBlockPool.BLOCK_TOKENS);
            summary.put("model", model.location);
            summary.put("sequences", sequences);
            summary.put("context", context);
            summary.put("kv_bytes_per_token", bytesPerToken);
            summary.put("kv_cache_bytes", budget);
            summary.put("kv_blocks", m.kvBlocks());
            summary.put("positions_reserved_per_request", reserved);
            summary.put("sequences_running_max", maxRunning);
            summary.put("sequences_waiting_min", minWaiting);
            summary.put("kv_peak_bytes_in_use", m.kvBlocksInUsePeak() * m.kvBlockBytes());
            summary.put("generated_tokens", generated);
            summary.put("fp32_max_sequences_x_context_bytes", fp32Before);
            summary.put("rss_after_load_mb", rssBefore);
            summary.put("peak_rss_mb", Benchmark.peakRssMb());
            cli.out.printf(Locale.ROOT, "KV cache memory %s (%d blocks of %d positions, %d bytes per position); each request "
                            + "reserves up to %d positions, so at most %d of %d ran at once (the others waited)%n",
                    KvBlockPool.formatBytes(budget), m.kvBlocks(), KvBlockPool.BLOCK_TOKENS, bytesPerToken, reserved, maxRunning, sequences);
            cli.out.printf(Locale.ROOT, "KV in use at peak %s; %d tokens generated in %d s; peak RSS %.0f MB (%.0f MB after load); "
                    + "an fp32 cache of %d sequences x %d positions: %s%n", KvBlockPool.formatBytes(m.kvBlocksInUsePeak() * m.kvBlockBytes()),
                    generated, seconds, Benchmark.peakRssMb(), rssBefore, sequences, context, KvBlockPool.formatBytes(fp32Before));
        }
        if (json) {
            cli.out.println(summary);
        }
        return 0;
    }
}
