package io.flinkqwen3.runtime;

import io.flinkqwen3.model.Checkpoint;
import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.model.ModelLocator;
import io.flinkqwen3.model.QuantizedCheckpoint;
import io.flinkqwen3.tensor.KernelCheck;
import io.flinkqwen3.tensor.Parallel;
import io.flinkqwen3.tokenizer.ChatTemplate;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Continuous batching over every in-flight request. One scheduler thread runs steps; each step is
 * one batched forward pass over the decode tokens of all running requests plus prefill chunks of
 * new ones, then one sample per request whose pending tokens are consumed. Requests join at the
 * next step and leave when done; admission and batch order are earliest-deadline-first, with
 * requests that can no longer make their deadline admitted after those that still can. Before every
 * step the {@link SlaBudgetPolicy} re-decides the thinking budgets of adaptive requests. The math
 * runs on the model's fixed worker pool: requests never get a thread each.
 *
 * <p>All sequences share one {@link KvBlockPool} of {@link EngineOptions#kvCacheMemory} bytes with a
 * prefix cache: a request starts from the cached KV of the longest prefix of whole blocks it shares
 * with earlier requests. A request is admitted only when the pool can reserve every block it may
 * need (prompt plus max tokens); until then it waits, in deadline order (backpressure).
 *
 * <p>Thread-safe: any thread may {@link #submit}; results complete on the scheduler thread.
 */
public final class Qwen3Engine implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Qwen3Engine.class);
    private static final Comparator<Running> EARLIEST_DEADLINE =
            Comparator.comparingLong((Running r) -> r.generation.deadlineNanos).thenComparingLong(r -> r.sequence);

    private final Qwen3Model model;
    private final Qwen3Tokenizer tokenizer;
    private final EngineOptions options;
    private final Generation.SpecialTokens special;
    private final int contextLength;
    private final EngineMetrics metrics;
    private final SlaBudgetPolicy policy = new SlaBudgetPolicy();
    /** The checkpoint's template opens the think block itself (Qwen3-*-Thinking-2507). */
    private final boolean templateOpensThinkBlock;

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition workArrived = lock.newCondition();
    private final TreeSet<Running> waiting = new TreeSet<>(EARLIEST_DEADLINE);
    private final List<Running> active = new ArrayList<>();
    /** The KV cache of every sequence; used by the scheduler thread only. */
    private final KvBlockPool pool;
    private final Thread scheduler;
    private volatile boolean closed;
    private long submitted;

    /**
     * A request; maxPositions: the positions its cache may hold (prompt plus what it may generate);
     * scratchBlocks: blocks reserved for its labels' forks in one step (0 without labels).
     */
    private record Running(Generation generation, CompletableFuture<GenerationResult> result, long sequence, int maxPositions,
                           int scratchBlocks) {}

    /** A label running in the current step as a fork of its request: its logits from row firstRow of the step's labels. */
    private record LabelRun(Generation generation, int label, int firstRow) {}

    /** At most this many scratch blocks per classification request per step (labels beyond wait for the next step). */
    private static final int MAX_SCRATCH_BLOCKS = 8;

    public Qwen3Engine(Qwen3Model model, Qwen3Tokenizer tokenizer, EngineOptions options) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.options = options;
        ModelConfig config = model.config();
        this.contextLength = options.maxContext() > 0
                ? Math.min(options.maxContext(), config.maxPositionEmbeddings()) : config.maxPositionEmbeddings();
        this.special = specialTokens(config, model.checkpoint(), tokenizer);
        long kvBytes = options.kvCacheMemory() > 0 ? options.kvCacheMemory()
                : options.defaultKvCacheTokens(contextLength) * KvBlockPool.bytesPerToken(config, options.kvPrecision());
        this.pool = KvBlockPool.of(config, options.kvPrecision(), kvBytes, options.prefixCaching());
        this.metrics = new EngineMetrics(options.maxSequences());
        metrics.kvCache(pool);
        LOG.info("KV cache: {} blocks of {} positions, {} of address space ({}; memory is taken as blocks fill){}",
                pool.blocks(), KvBlockPool.BLOCK_TOKENS,
                KvBlockPool.formatBytes(pool.byteSize()), options.kvPrecision(), options.prefixCaching() ? ", prefix cache on" : "");
        this.templateOpensThinkBlock = ChatTemplate.opensThinkBlock(Checkpoints.chatTemplate(model.checkpoint()));
        this.scheduler = Thread.ofPlatform().daemon().name("qwen3-engine-scheduler").start(this::runSteps);
    }

    /**
     * Resolves the location (directory, .gguf file or Hugging Face repo id), maps the weights and
     * starts the engine. When any step fails, everything opened so far (kernel threads, mappings,
     * packed weights, the scheduler thread) is closed before the exception leaves.
     */
    public static Qwen3Engine open(String location, EngineOptions options) {
        long start = System.nanoTime();
        Path path = ModelLocator.resolve(location);
        var parallel = new Parallel(options.threads());
        Checkpoint checkpoint = null;
        Qwen3Model model = null;
        Qwen3Engine engine = null;
        try {
            checkpoint = Checkpoints.open(path);
            if (options.quantize() != null) {
                checkpoint = new QuantizedCheckpoint(checkpoint, options.quantize(), parallel);
            }
            Qwen3Tokenizer tokenizer = Checkpoints.tokenizer(checkpoint);
            model = Qwen3Model.load(checkpoint, parallel, options.expertShards());
            var loaded = checkpoint;
            var loadedModel = model;
            LOG.info(String.format("loaded %s (%s, %d layers, %.1f MB%s%s) in %.2f s", location,
                    loaded.config().modelType(), loaded.config().numLayers(), loaded.mappedBytes() / 1e6,
                    options.quantize() == null ? " mapped" : " mapped + converted to " + options.quantize(),
                    loaded.config().isMoe() ? ", the experts of each MoE layer in " + loadedModel.expertShards() + " shards" : "",
                    (System.nanoTime() - start) / 1e9));
            engine = new Qwen3Engine(model, tokenizer, options);
            engine.warmUp();
            return engine;
        } catch (RuntimeException | Error e) {
            try {
                if (engine != null) {
                    engine.close(); // the scheduler, the kernel threads, the model and its checkpoint
                } else {
                    if (model != null) {
                        model.close(); // packed weights and the checkpoint
                    } else if (checkpoint != null) {
                        checkpoint.close();
                    }
                    parallel.close();
                }
            } catch (RuntimeException | Error closing) {
                e.addSuppressed(closing);
            }
            throw e;
        }
    }

    private static Generation.SpecialTokens specialTokens(ModelConfig config, Checkpoint checkpoint, Qwen3Tokenizer tokenizer) {
        Set<Integer> stop = new HashSet<>(config.eosTokenIds());
        stop.addAll(checkpoint.generationConfig().eosTokenIds());
        if (tokenizer == null) {
            return new Generation.SpecialTokens(Set.copyOf(stop), -1, -1, new int[0]);
        }
        for (String end : List.of("<|im_end|>", "<|endoftext|>")) {
            if (tokenizer.tokenId(end) >= 0) {
                stop.add(tokenizer.tokenId(end));
            }
        }
        return new Generation.SpecialTokens(Set.copyOf(stop), tokenizer.tokenId(ChatTemplate.THINK_OPEN),
                tokenizer.tokenId(ChatTemplate.THINK_CLOSE), tokenizer.encode(Generation.EARLY_STOP_TEXT));
    }

    /**
     * Runs a few small batches so the JIT compiles the kernels before the first real request (the
     * first request's latency counts against its SLA), then one sequence alone and a batch of up to
     * 8, whose measured step times are the SLA policy's costs until real steps refine them.
     */
    private void warmUp() {
        long start = System.nanoTime();
        int wide = Math.min(8, options.maxSequences());
        int[] rounds = {wide, 1, wide};
        for (int round = 0; round < rounds.length; round++) {
            int batch = rounds[round];
            var requests = new ArrayList<CompletableFuture<GenerationResult>>();
            int length = Math.min(8, contextLength - 1), vocab = model.config().vocabSize(); // fits any context and vocabulary
            for (int i = 0; i < batch && length > 0; i++) {
                int[] prompt = new int[length];
                for (int p = 0; p < length; p++) {
                    prompt[p] = (1 + p + (p == 0 ? i : 0)) % vocab;
                }
                requests.add(submit(GenerationRequest.builder().promptTokens(prompt).maxTokens(8)
                        .sampling(SamplingParams.greedy()).build(), Long.MAX_VALUE));
            }
            requests.forEach(CompletableFuture::join);
            if (round == 0) {
                metrics.forgetStepCosts(); // the first round ran while the JIT compiled: its steps say nothing about costs
            }
        }
        LOG.info("warmed up in {} s; decode step {} ms alone, {} ms for {} sequences", String.format("%.2f", (System.nanoTime() - start) / 1e9),
                String.format("%.2f", metrics.decodeStepSeconds(1) * 1e3), String.format("%.2f", metrics.decodeStepSeconds(wide) * 1e3), wide);
        KernelCheck.checkOnceInBackground(slow -> LOG.warn("{}", slow));
    }

    public ModelConfig config() {
        return model.config();
    }

    /** Null for checkpoints that ship no tokenizer (then requests must carry token ids). */
    public Qwen3Tokenizer tokenizer() {
        return tokenizer;
    }

    public int contextLength() {
        return contextLength;
    }

    public EngineMetrics metrics() {
        return metrics;
    }

    public Qwen3Model model() {
        return model;
    }

    /**
     * The prompt token ids of a request: the rendered chat template, the raw prompt, or the given
     * ids. A text prompt with no room left in the context is a {@link PromptTooLongException} found
     * without tokenizing all of it: at most about the context's worth of tokens is ever tokenized,
     * and text longer than any prompt of that many tokens can be is refused by its length alone.
     */
    public int[] promptTokens(GenerationRequest request) {
        if (request.promptTokens() != null) {
            return request.promptTokens().clone();
        }
        if (tokenizer == null) {
            throw new IllegalArgumentException("this model has no tokenizer.json: send prompt token ids instead of text");
        }
        String text = request.rawPrompt() != null ? request.rawPrompt()
                : ChatTemplate.render(request.messages(), request.tools(), true, request.thinks(), templateOpensThinkBlock);
        int[] ids = tokenizer.encode(text, contextLength - 1); // a prompt of contextLength tokens leaves no room
        if (ids == null) {
            throw PromptTooLongException.counted(text.length(), request.rawPrompt() == null, contextLength - 1, contextLength,
                    text.length() > tokenizer.maxCharsFor(contextLength - 1));
        }
        return ids;
    }

    /** Runs a request to completion on the calling thread's behalf (it waits). */
    public GenerationResult generate(GenerationRequest request) {
        return submit(request, Long.MAX_VALUE).join();
    }

    /**
     * Queues a request. deadlineNanos is on the {@link System#nanoTime()} clock (Long.MAX_VALUE: none)
     * and orders admission and batching. Throws {@link PromptTooLongException} or
     * IllegalArgumentException for a request that can never run.
     */
    public CompletableFuture<GenerationResult> submit(GenerationRequest request, long deadlineNanos) {
        if (closed) {
            throw new IllegalStateException(CLOSED);
        }
        int[] prompt = promptTokens(request);
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt is empty");
        }
        if (prompt.length >= contextLength) {
            throw new PromptTooLongException(prompt.length, contextLength);
        }
        int vocab = model.config().vocabSize();
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocab) { // an index into the embedding table: checked here, not in a kernel
                throw new IllegalArgumentException("prompt token " + i + " is id " + prompt[i] + ", outside the vocabulary [0, " + vocab + ")");
            }
        }
        int[][] labels = request.classifies() ? labelTokens(request.labels()) : null;
        int longestLabel = labels == null ? 0 : java.util.Arrays.stream(labels).mapToInt(l -> l.length).max().orElse(0);
        if (prompt.length + longestLabel > contextLength) {
            throw new PromptTooLongException(prompt.length + longestLabel, contextLength);
        }
        int scratchBlocks = labels == null ? 0 : scratchBlocks(labels);
        int poolPositions = (pool.blocks() - scratchBlocks) * KvBlockPool.BLOCK_TOKENS;
        if (prompt.length >= poolPositions) {
            throw new IllegalArgumentException("prompt has " + prompt.length + " tokens, the KV cache memory holds "
                    + poolPositions + " positions (" + pool.byteSize() + " bytes): raise the KV cache memory or shorten the prompt");
        }
        // room for the prompt, max tokens and a forced early-stop text, within the context and the pool
        int maxPositions = (int) Math.min(Math.min(contextLength - longestLabel, poolPositions),
                (long) prompt.length + request.maxTokens() + special.earlyStop().length + 1);
        if (labels != null && !request.thinks()) {
            maxPositions = prompt.length + 1; // the prompt only: the labels run in scratch blocks
        }
        SamplingParams sampling = request.sampling() != null ? request.sampling()
                : SamplingParams.recommended(request.thinks(), model.checkpoint().generationConfig(), System.nanoTime());
        JsonConstraint constraint = request.jsonSchema() == null ? null : constraint(request);
        var generation = new Generation(request, prompt, maxPositions, special, tokenizer, sampling, System.nanoTime(), deadlineNanos,
                constraint);
        if (labels != null) {
            generation.classify(labels, tokenizer.encode("\n\n"));
        }
        var future = new CompletableFuture<GenerationResult>();
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException(CLOSED);
            }
            waiting.add(new Running(generation, future, submitted++, maxPositions, scratchBlocks));
            metrics.recordQueue(waiting.size(), active.size());
            workArrived.signal();
        } finally {
            lock.unlock();
        }
        return future;
    }

    /** Each label's token ids; IllegalArgumentException for a label of more than {@link Labels#MAX_TOKENS} tokens. */
    private int[][] labelTokens(List<String> labels) {
        if (tokenizer == null) {
            throw new IllegalArgumentException("this model has no tokenizer.json: labels need one");
        }
        int[][] tokens = new int[labels.size()][];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = tokenizer.encode(labels.get(i), Labels.MAX_TOKENS + 1);
            if (tokens[i] == null || tokens[i].length > Labels.MAX_TOKENS) {
                String label = labels.get(i).length() > 40 ? labels.get(i).substring(0, 40) + "..." : labels.get(i);
                throw new IllegalArgumentException("labels[" + i + "] '" + label + "' has more than " + Labels.MAX_TOKENS
                        + " tokens, the most a label may have: shorten it (the model scores every token of every label)");
            }
        }
        return tokens;
    }

    /**
     * Scratch blocks a classification reserves: enough for all its labels' forks at once (each fork
     * needs its tokens after the first, from an even slot), at most {@link #MAX_SCRATCH_BLOCKS}.
     */
    private static int scratchBlocks(int[][] labels) {
        int blocks = 0, slot = KvBlockPool.BLOCK_TOKENS;
        for (int[] label : labels) {
            int n = label.length - 1;
            if (n == 0) {
                continue;
            }
            if (slot + n > KvBlockPool.BLOCK_TOKENS) {
                blocks++;
                slot = 0;
            }
            slot += (n + 1) & ~1;
        }
        return Math.min(blocks, MAX_SCRATCH_BLOCKS);
    }

    /**
     * The request's schema compiled against this engine's vocabulary; compiled schemas (and the
     * masks they have built) are kept for the {@link #CACHED_SCHEMAS} most recently used schema texts.
     */
    private JsonConstraint constraint(GenerationRequest request) {
        if (tokenizer == null) {
            throw new IllegalArgumentException("json_schema needs a model with a tokenizer.json");
        }
        if (!request.stopStrings().isEmpty()) {
            throw new IllegalArgumentException("stop strings cannot be combined with json_schema (a stop string would cut the JSON)");
        }
        synchronized (schemas) {
            JsonConstraint c = schemas.get(request.jsonSchema());
            if (c != null) {
                return c;
            }
        }
        var c = new JsonConstraint(JsonSchemaGrammar.compile(request.jsonSchema()), tokenizer, special.stop());
        synchronized (schemas) {
            schemas.put(request.jsonSchema(), c);
        }
        return c;
    }

    /** Compiled schemas kept by {@link #constraint}. */
    static final int CACHED_SCHEMAS = 32;
    private final java.util.Map<String, JsonConstraint> schemas = new java.util.LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(java.util.Map.Entry<String, JsonConstraint> eldest) {
            return size() > CACHED_SCHEMAS;
        }
    };

    private void runSteps() {
        try {
            while (!closed) {
                try {
                    if (admit()) {
                        step();
                    }
                } catch (RuntimeException | Error e) {
                    if (closed) {
                        break; // close() stopped the step between two layers
                    }
                    LOG.error("engine step failed; failing the requests in it", e);
                    active.forEach(r -> {
                        recycle(r.generation.cache);
                        r.result.completeExceptionally(e);
                    });
                    active.clear();
                }
            }
        } finally {
            shutDown();
        }
    }

    /** Runs on the scheduler thread once it has left its last step: fails what is left, then unmaps. */
    private void shutDown() {
        lock.lock();
        try {
            var closedError = new IllegalStateException("engine closed before the request finished");
            waiting.forEach(r -> r.result.completeExceptionally(closedError));
            active.forEach(r -> r.result.completeExceptionally(closedError));
            waiting.clear();
            active.clear();
        } finally {
            lock.unlock();
        }
        try {
            model.parallel().close();
        } finally {
            model.close();
        }
    }

    /** Moves waiting requests into the running set (EDF); blocks while there is nothing to do. */
    private boolean admit() {
        lock.lock();
        try {
            while (active.isEmpty() && waiting.isEmpty() && !closed) {
                workArrived.awaitUninterruptibly();
            }
            if (closed) {
                return false;
            }
            // requests cancelled by their submitter (an operator that closed) give up their place and cache
            waiting.removeIf(r -> {
                if (r.result.isDone()) {
                    recycle(r.generation.cache);
                    return true;
                }
                return false;
            });
            active.removeIf(r -> {
                if (r.result.isDone()) {
                    recycle(r.generation.cache);
                    return true;
                }
                return false;
            });
            long now = System.nanoTime();
            while (active.size() < metrics.batchLimit() && !waiting.isEmpty()) {
                metrics.recordQueue(waiting.size(), active.size());
                Running next = waiting.stream().filter(r -> !policy.hopeless(r.generation, now, metrics)).findFirst()
                        .orElse(waiting.first()); // requests that cannot make it any more go after those that still can
                KvCache cache = pool.open(next.generation.prompt, next.maxPositions, next.scratchBlocks);
                if (cache == null) {
                    break; // the KV cache cannot hold it yet: it waits for running requests to finish
                }
                next.generation.attach(cache);
                waiting.remove(next);
                active.add(next);
            }
            metrics.recordQueue(waiting.size(), active.size());
            if (!active.isEmpty()) {
                replan(now);
            }
            return !active.isEmpty();
        } finally {
            lock.unlock();
        }
    }

    /** The SLA policy re-decides the adaptive thinking budgets (under the lock: it sees the waiting queue). */
    private void replan(long now) {
        var running = active.stream().sorted(EARLIEST_DEADLINE).map(Running::generation).toList();
        var next = waiting.stream().limit(options.maxSequences()).map(Running::generation).toList();
        metrics.recordPlan(policy.replan(now, running, next, metrics));
    }

    /** One forward pass: decode tokens first (EDF), then prefill chunks within the token budget. */
    private void step() {
        active.sort(Comparator.comparing((Running r) -> r.generation.prefilling()).thenComparing(EARLIEST_DEADLINE));
        var tokens = new IntList();
        var positions = new IntList();
        var caches = new ArrayList<KvCache>();
        var logitRows = new IntList();
        var sampled = new ArrayList<Running>();
        int budget = options.maxBatchTokens(), decoding = 0, prefill = 0;
        for (Running r : active) {
            Generation g = r.generation;
            if (g.prefilling()) {
                g.adoptCachedPrefix(); // requests admitted together: the first one's prompt blocks are cached by now
            }
            int take = Math.min(g.pendingCount(), budget);
            if (take == 0) {
                continue;
            }
            if (g.prefilling()) {
                prefill += take;
            } else {
                decoding++;
            }
            int start = g.nextPosition();
            for (int t : g.takePending(take)) {
                tokens.add(t);
                positions.add(start++);
                caches.add(g.cache);
            }
            budget -= take;
            if (g.pendingCount() == 0) {
                logitRows.add(tokens.size() - 1);
                sampled.add(r);
            }
        }
        // labels of classifications whose prompt (and thinking) is done: forks of their sequence, in scratch blocks
        var labelRuns = new ArrayList<LabelRun>();
        var scratch = new ArrayList<int[]>(); // {owner index in active, block}
        int labelRows = 0;
        for (int a = 0; a < active.size() && budget > 0; a++) {
            Running r = active.get(a);
            Generation g = r.generation;
            if (!g.scoring()) {
                continue;
            }
            int block = -1, slot = KvBlockPool.BLOCK_TOKENS, taken = 0, start = g.cache.length();
            for (int label = g.nextLabelToRun(); label >= 0; label = g.nextLabelToRun()) {
                int[] t = g.labelTokens(label);
                int n = t.length - 1;
                if (n > budget && !labelRuns.isEmpty()) {
                    break;
                }
                if (slot + n > KvBlockPool.BLOCK_TOKENS) {
                    if (taken == r.scratchBlocks) {
                        break;
                    }
                    block = g.cache.takeScratchBlock();
                    scratch.add(new int[] {a, block});
                    taken++;
                    slot = 0;
                }
                KvCache fork = g.cache.fork(block, slot, n);
                slot += (n + 1) & ~1;
                labelRuns.add(new LabelRun(g, label, labelRows));
                for (int j = 0; j < n; j++) {
                    tokens.add(t[j]);
                    positions.add(start + j);
                    caches.add(fork);
                    logitRows.add(tokens.size() - 1);
                }
                labelRows += n;
                budget -= n;
                g.labelTaken(label);
            }
        }
        long begin = System.nanoTime();
        float[] logits = model.forward(tokens.toArray(), positions.toArray(), caches.toArray(KvCache[]::new),
                logitRows.toArray(), stopWhenClosed);
        int vocabSize = model.config().vocabSize();
        for (LabelRun run : labelRuns) {
            run.generation.scoreLabel(run.label, logits, sampled.size() + run.firstRow, vocabSize);
        }
        for (int[] s : scratch) {
            active.get(s[0]).generation.cache.releaseScratchBlock(s[1]);
        }
        metrics.recordExpertShards(model.lastExpertShardLoad());

        int vocab = model.config().vocabSize();
        for (LabelRun run : labelRuns) {
            run.generation.labelsScored();
        }
        for (Running r : List.copyOf(active)) {
            if (r.generation.scoring() || !r.generation.done() || sampled.contains(r)) {
                continue;
            }
            active.remove(r); // a classification whose last labels ran in this step
            recycle(r.generation.cache);
            r.result.complete(r.generation.result());
        }
        for (int i = 0; i < sampled.size(); i++) {
            Running r = sampled.get(i);
            r.generation.sampleFrom(logits, i * vocab, vocab);
            if (r.generation.done()) {
                active.remove(r);
                recycle(r.generation.cache);
                try {
                    r.result.complete(r.generation.result());
                } catch (RuntimeException e) {
                    r.result.completeExceptionally(e); // that request's problem, not the batch's
                }
            }
        }
        metrics.recordStep(decoding, prefill, (System.nanoTime() - begin) / 1e9); // the whole step: sampling is part of its cost
    }

    /** Gives a finished or failed request's blocks back to the pool (null: it never got any). */
    private static void recycle(KvCache cache) {
        if (cache != null) {
            cache.close();
        }
    }

    /**
     * Stops the engine: requests still queued or running fail, and the weights are unmapped once
     * the scheduler has left its step (a running step stops at the next layer boundary), never
     * while the kernels may still read them. Waits for that unless called from the scheduler
     * thread itself (a completion callback), which then shuts down when the callback returns.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            closed = true;
            workArrived.signalAll();
        } finally {
            lock.unlock();
        }
        if (Thread.currentThread() == scheduler) {
            return;
        }
        boolean interrupted = false;
        while (scheduler.isAlive()) {
            try {
                scheduler.join();
            } catch (InterruptedException e) {
                interrupted = true; // unmapping under a running step would crash the JVM: wait it out
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Whether the engine has been closed (it takes no requests). */
    public boolean isClosed() {
        return closed;
    }

    private static final String CLOSED = "engine is closed";

    /** Stops a step between two layers once the engine is closing. */
    private final ForwardObserver stopWhenClosed = new ForwardObserver() {
        @Override
        public void hiddenState(int layer, float[] hidden, int tokens, int width) {
            if (closed) {
                throw new CancellationException("the engine is closing");
            }
        }
    };

    /** A growable int array (the batch is rebuilt every step). */
    private static final class IntList {
        private int[] values = new int[64];
        private int size;

        void add(int v) {
            if (size == values.length) {
                values = java.util.Arrays.copyOf(values, size * 2);
            }
            values[size++] = v;
        }

        int size() {
            return size;
        }

        int[] toArray() {
            return java.util.Arrays.copyOf(values, size);
        }
    }
}
