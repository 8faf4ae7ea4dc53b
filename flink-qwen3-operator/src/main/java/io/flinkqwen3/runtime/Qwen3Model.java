package io.flinkqwen3.runtime;

import io.flinkqwen3.model.Checkpoint;
import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.model.ProgressLog;
import io.flinkqwen3.model.QuantizedCheckpoint;
import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Matrix;
import io.flinkqwen3.tensor.NativeMemory;
import io.flinkqwen3.tensor.PackedMatrix;
import io.flinkqwen3.tensor.Parallel;
import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Qwen3 decoder, dense (qwen3) and mixture-of-experts (qwen3_moe), as HF modeling_qwen3.py's
 * Qwen3ForCausalLM: token embedding, {@link DecoderLayer}s ({@link Attention}, then {@link Mlp} or
 * {@link SparseMoeBlock}), final RMSNorm and the LM head. Math lives in {@link Kernels} and the
 * {@link Matrix} classes.
 *
 * <p>A batch is a list of tokens, each belonging to a sequence (its {@link KvCache}) at a position;
 * prefill of a prompt is many tokens of one sequence, a decode step is one token of many sequences.
 * The weights are read once per batch.
 */
public final class Qwen3Model implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Qwen3Model.class);
    /** The most shards the experts of a layer can be split into (as many as kernel threads can be). */
    public static final int MAX_EXPERT_SHARDS = Parallel.MAX_THREADS;

    private final ModelConfig config;
    private final Checkpoint checkpoint;
    private final Parallel parallel;
    private final Matrix embedTokens; // [vocab, hidden]
    private final DecoderLayer[] layers;
    private final float[] finalNorm; // [hidden]
    private final Matrix lmHead; // [vocab, hidden]
    private final RotaryEmbedding rope;
    private final int expertShards;
    /** The packed copies of the weight matrices, unmapped on close. */
    private final Arena packed;

    private Qwen3Model(Checkpoint checkpoint, Parallel parallel, int expertShards, Arena packed) {
        this.packed = packed;
        this.checkpoint = checkpoint;
        this.config = checkpoint.config();
        this.parallel = parallel;
        this.expertShards = expertShards;
        var w = new WeightBinder(checkpoint, parallel, packed, new LongAdder());
        int h = config.hiddenSize();
        embedTokens = w.matrix("model.embed_tokens.weight", config.vocabSize(), h, "vocab_size x hidden_size");
        layers = new DecoderLayer[config.numLayers()];
        // converting (QuantizedCheckpoint converts as it is read) and packing take a while for large models
        var progress = new ProgressLog(LOG, "loading " + checkpoint.location().getFileName()
                + (checkpoint instanceof QuantizedCheckpoint q ? " (converting to " + q.target() + ")" : ""),
                layers.length, ProgressLog.Unit.LAYERS, ProgressLog.Unit.WEIGHTS, 0, ProgressLog.INTERVAL, System::nanoTime);
        for (int l = 0; l < layers.length; l++) {
            layers[l] = DecoderLayer.bind(w, l, config, expertShards, parallel);
            progress.update(l + 1, w.bound().sum());
        }
        finalNorm = w.vector("model.norm.weight", h, "hidden_size");
        lmHead = config.tieWordEmbeddings() && !checkpoint.contains("lm_head.weight")
                ? embedTokens : w.matrix("lm_head.weight", config.vocabSize(), h, "vocab_size x hidden_size");
        rope = new RotaryEmbedding(config.headDim(), config.rope());
    }

    /**
     * Binds the model to the checkpoint's weights, checking every shape against the config; the
     * matrices are repacked once into the kernels' layout ({@link PackedMatrix}, off-heap). When
     * a weight is missing or does not fit, the copies packed so far are unmapped before the
     * exception leaves (the checkpoint stays the caller's to close).
     */
    public static Qwen3Model load(Checkpoint checkpoint, Parallel parallel) {
        return load(checkpoint, parallel, 0);
    }

    /**
     * {@link #load(Checkpoint, Parallel)} with the experts of each MoE layer split into
     * {@code expertShards} shards ({@link SparseMoeBlock}); 0: one per thread of {@code parallel}.
     */
    public static Qwen3Model load(Checkpoint checkpoint, Parallel parallel, int expertShards) {
        if (expertShards < 0 || expertShards > MAX_EXPERT_SHARDS) {
            throw new IllegalArgumentException("expert shards must be between 0 (one per thread) and " + MAX_EXPERT_SHARDS
                    + ", got " + expertShards);
        }
        Arena packed = NativeMemory.slabArena(); // the packed weights, side by side on huge pages
        try {
            return new Qwen3Model(checkpoint, parallel, expertShards == 0 ? parallel.threads() : expertShards, packed);
        } catch (RuntimeException | Error e) {
            packed.close();
            throw e;
        }
    }

    public ModelConfig config() {
        return config;
    }

    public Checkpoint checkpoint() {
        return checkpoint;
    }

    public Parallel parallel() {
        return parallel;
    }

    /** Shards the experts of each MoE layer are split into. */
    public int expertShards() {
        return expertShards;
    }

    /** How the last forward pass spread its routed tokens over the expert shards; {@link ExpertShardLoad#NONE} for a dense model. */
    public ExpertShardLoad lastExpertShardLoad() {
        var load = ExpertShardLoad.NONE;
        for (DecoderLayer layer : layers) {
            if (layer.mlp() instanceof SparseMoeBlock moe) {
                load = load.plus(moe.shards().lastStep());
            }
        }
        return load;
    }

    /**
     * An empty fp32 cache of its own for a sequence of up to maxPositions tokens (at most the
     * model's context length), for running the model without an engine.
     */
    public KvCache newCache(int maxPositions) {
        return newCache(maxPositions, KvBlockPool.Precision.F32);
    }

    /** {@link #newCache(int)} storing keys and values in {@code precision}. */
    public KvCache newCache(int maxPositions, KvBlockPool.Precision precision) {
        return KvCache.standalone(config.numLayers(), config.numKvHeads(), config.headDim(),
                Math.min(maxPositions, config.maxPositionEmbeddings()), precision);
    }

    /**
     * Runs tokens[i] at positions[i] of the sequence with cache caches[i], appending their keys and
     * values to the caches, and returns the logits of the batch rows listed in {@code logitRows}
     * ([logitRows.length, vocab]). Tokens of one sequence must appear in position order.
     */
    public float[] forward(int[] tokens, int[] positions, KvCache[] caches, int[] logitRows, ForwardObserver observer) {
        int n = tokens.length, h = config.hiddenSize();
        for (int i = 0; i < n; i++) {
            caches[i].ensureCapacity(positions[i] + 1);
        }
        var batch = Batch.of(positions, caches, rope);
        float[] hidden = new float[n * h]; // [n, hidden]
        for (int i = 0; i < n; i++) {
            embedTokens.rowTo(tokens[i], hidden, i * h);
        }
        observer.hiddenState(0, hidden, n, h);
        for (int l = 0; l < layers.length; l++) {
            layers[l].forward(hidden, batch, observer);
            if (l < layers.length - 1) {
                observer.hiddenState(l + 1, hidden, n, h);
            }
        }
        for (int i = 0; i < n; i++) {
            caches[i].written(positions[i], tokens[i]);
        }

        float[] last = new float[logitRows.length * h]; // [rows, hidden]: only the rows whose logits are wanted
        for (int r = 0; r < logitRows.length; r++) {
            Kernels.rmsnorm(last, r * h, hidden, logitRows[r] * h, finalNorm, config.rmsNormEps(), h);
        }
        if (logitRows.length == n) {
            observer.hiddenState(layers.length, last, n, h);
        }
        float[] logits = new float[logitRows.length * config.vocabSize()];
        lmHead.matmul(last, logitRows.length, logits, parallel); // [rows, hidden] -> [rows, vocab]
        return logits;
    }

    /**
     * Runs one sequence's tokens from its cache's current length on (a prefill) and returns the
     * logits of every position ([tokens, vocab]) or of the last one only ([vocab]).
     */
    public float[] prefill(int[] tokens, KvCache cache, boolean logitsForEveryPosition, ForwardObserver observer) {
        int start = cache.length();
        int[] positions = new int[tokens.length];
        Arrays.setAll(positions, i -> start + i);
        KvCache[] caches = new KvCache[tokens.length];
        Arrays.fill(caches, cache);
        int[] rows = logitsForEveryPosition ? new int[tokens.length] : new int[] {tokens.length - 1};
        if (logitsForEveryPosition) {
            Arrays.setAll(rows, i -> i); // batch rows, not positions: they differ when the cache is not empty
        }
        return forward(tokens, positions, caches, rows, observer);
    }

    @Override
    public void close() {
        packed.close();
        checkpoint.close();
    }
}
