package io.flinkqwen3.model;

import io.flinkqwen3.tensor.DType;
import io.flinkqwen3.tensor.Matrix;
import io.flinkqwen3.tensor.NativeMemory;
import io.flinkqwen3.tensor.PackedMatrix;
import io.flinkqwen3.tensor.Parallel;
import io.flinkqwen3.tensor.Q4_0Matrix;
import io.flinkqwen3.tensor.Q8_0Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Load-time quantization: serves the projection matrices of another checkpoint converted to Q8_0
 * or Q4_0, in off-heap memory, each converted once on first use. Norms and the MoE router stay
 * as stored (they are tiny and precision-sensitive, as llama.cpp keeps them); with Q4_0 the token
 * embedding (and a tied LM head) become Q8_0. Matrices whose rows are not whole blocks stay as
 * stored.
 */
public final class QuantizedCheckpoint implements Checkpoint {
    private static final Logger LOG = LoggerFactory.getLogger(QuantizedCheckpoint.class);

    private final Checkpoint source;
    private final DType target;
    private final Parallel parallel;
    private final Arena arena = Arena.ofShared();
    private final Map<String, Tensor> converted = new ConcurrentHashMap<>();
    private long convertedBytes;

    public QuantizedCheckpoint(Checkpoint source, DType target, Parallel parallel) {
        if (target != DType.Q8_0 && target != DType.Q4_0) {
            throw new IllegalArgumentException("load-time quantization supports q8_0 and q4_0, not " + target);
        }
        this.source = source;
        this.target = target;
        this.parallel = parallel;
    }

    /** "q8_0" / "q4_0" (case-insensitive) to the type. */
    public static DType parseFormat(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "q8_0" -> DType.Q8_0;
            case "q4_0" -> DType.Q4_0;
            default -> throw new IllegalArgumentException("unknown quantization '" + name + "' (supported: q8_0, q4_0)");
        };
    }

    private DType targetFor(String name, Tensor t) {
        boolean projection = name.endsWith("_proj.weight");
        boolean embedding = name.equals("model.embed_tokens.weight") || name.equals("lm_head.weight");
        if (t.shape().length != 2 || !(projection || embedding) || t.type().quantized()) {
            return null;
        }
        DType type = embedding ? DType.Q8_0 : target;
        return t.shape()[1] % type.blockElements() == 0 ? type : null;
    }

    /**
     * The tensor, quantized to the target type on first use when it is a projection matrix.
     *
     * @throws ModelFormatException when a weight to quantize is not a finite number (naming the file,
     *     the tensor, its row and column)
     */
    @Override
    public Tensor tensor(String name) {
        Tensor original = source.tensor(name);
        DType type = targetFor(name, original);
        return type == null ? original : converted.computeIfAbsent(name, n -> quantize(original, type));
    }

    private Tensor quantize(Tensor t, DType type) {
        int rows = (int) t.shape()[0], cols = (int) t.shape()[1];
        Matrix from = Matrix.of(t.type(), t.data(), rows, cols);
        long rowBytes = type.byteSize(cols);
        MemorySegment out;
        synchronized (this) {
            out = NativeMemory.allocate(rowBytes * rows, arena);
            convertedBytes += out.byteSize();
        }
        var damaged = new java.util.concurrent.atomic.AtomicReference<String>();
        parallel.forEach(rows, r -> {
            float[] row = new float[cols];
            from.rowTo(r, row, 0);
            try { // quantized, a weight that is not a number would become a block scale that is not one
                for (int c = 0; c < cols; c++) {
                    PackedMatrix.checkFiniteWeight(row[c], r, c);
                }
            } catch (PackedMatrix.DamagedWeightsException e) {
                damaged.compareAndSet(null, e.getMessage());
                return;
            }
            if (type == DType.Q8_0) {
                Q8_0Matrix.quantize(row, 0, cols, out, r * rowBytes);
            } else {
                Q4_0Matrix.quantize(row, 0, cols, out, r * rowBytes);
            }
        });
        if (damaged.get() != null) {
            throw t.damaged(damaged.get(), null);
        }
        LOG.debug("quantized {} to {}", t.name(), type);
        return new Tensor(t.name(), t.file() + " (" + type + ")", type, t.shape(), out);
    }

    /** What the projections are converted to: Q8_0 or Q4_0 (embeddings: Q8_0). */
    public DType target() {
        return target;
    }

    @Override
    public ModelConfig config() {
        return source.config();
    }

    @Override
    public GenerationConfig generationConfig() {
        return source.generationConfig();
    }

    @Override
    public Path location() {
        return source.location();
    }

    @Override
    public boolean contains(String name) {
        return source.contains(name);
    }

    @Override
    public Set<String> tensorNames() {
        return source.tensorNames();
    }

    /** The source's mapping plus the converted copies (the source stays mapped: norms are read from it). */
    @Override
    public long mappedBytes() {
        return source.mappedBytes() + convertedBytes;
    }

    /** The checkpoint the weights were converted from. */
    public Checkpoint source() {
        return source;
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
        source.close();
    }
}
