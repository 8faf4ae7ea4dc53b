package io.flinkqwen3.flink;

import io.flinkqwen3.model.ModelFormatException;
import io.flinkqwen3.runtime.EngineOptions;
import io.flinkqwen3.runtime.Qwen3Engine;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.runtime.execution.SuppressRestartsException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One {@link Qwen3Engine} per task manager and model: a static, reference-counted registry (the
 * pattern Flink's own model providers use for shared clients). Operators acquire in open() and
 * release in close(); the last release closes the engine and unmaps the weights.
 */
public final class TaskManagerEngines {
    private static final Logger LOG = LoggerFactory.getLogger(TaskManagerEngines.class);
    private static final Map<String, Shared> ENGINES = new HashMap<>();
    private static int opened;

    private static final class Shared {
        final Qwen3Engine engine;
        int references;

        Shared(Qwen3Engine engine) {
            this.engine = engine;
        }
    }

    private TaskManagerEngines() {}

    /** The key: model location plus the options that change the weights in memory. */
    static String key(String model, EngineOptions options) {
        return model + "|context=" + options.maxContext() + "|quantize=" + options.quantize();
    }

    public static Qwen3Engine acquire(String model, EngineOptions options) {
        return acquire(model, options, key -> Qwen3Engine.open(model, options));
    }

    /**
     * For operators and functions in open(): the engine the options ask for. A model that cannot
     * be loaded (a missing or corrupt file, a repo id offline and not cached, a download that
     * failed) or engine options that cannot work are not transient: restarting the task would
     * only fail again, forever. They leave as Flink's {@link SuppressRestartsException}, so the
     * job fails at once whatever its restart strategy, with the loader's message in the cause.
     * So does a model without a tokenizer (records hold text, no record could ever be answered),
     * and a JVM without the Vector API module ({@link VectorApiCheck}), checked first.
     */
    public static Qwen3Engine acquireForTask(ReadableConfig options) {
        VectorApiCheck.requireVectorApi();
        String model = options.get(Qwen3Options.MODEL);
        try {
            Qwen3Engine engine = acquire(model, Qwen3Options.engineOptions(options));
            if (engine.tokenizer() == null) {
                release(engine);
                throw new IllegalArgumentException("it has no tokenizer.json (or tokenizer.ggml.* metadata): the Flink operator "
                        + "needs a tokenizer to read prompts; put the model's tokenizer.json beside config.json");
            }
            return engine;
        } catch (ModelFormatException | IllegalArgumentException e) {
            LOG.error("Qwen3 model {} cannot be used, failing the job without restarts: {}", model, e.getMessage());
            throw new SuppressRestartsException(new ModelUnavailableException(
                    "Qwen3 model '" + model + "' cannot be used: " + e.getMessage(), e));
        }
    }

    /** Why the job failed without restarting: the model (or the engine options) cannot work, restarts would not change that. */
    public static final class ModelUnavailableException extends RuntimeException {
        ModelUnavailableException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    static synchronized Qwen3Engine acquire(String model, EngineOptions options, Function<String, Qwen3Engine> open) {
        Shared shared = ENGINES.get(key(model, options));
        if (shared == null) {
            shared = new Shared(open.apply(model));
            ENGINES.put(key(model, options), shared);
            opened++;
            LOG.info("opened the task manager's Qwen3 engine for {}", model);
        }
        shared.references++;
        return shared.engine;
    }

    public static synchronized void release(Qwen3Engine engine) {
        var it = ENGINES.entrySet().iterator();
        while (it.hasNext()) {
            Shared shared = it.next().getValue();
            if (shared.engine == engine && --shared.references == 0) {
                it.remove();
                engine.close();
                LOG.info("closed the task manager's Qwen3 engine (last user released it)");
            }
        }
    }

    /** Engines open now in this JVM. */
    public static synchronized int openEngines() {
        return ENGINES.size();
    }

    /** Engines opened since this JVM started (a second open of the same model shows as 2). */
    public static synchronized int enginesOpenedSinceStart() {
        return opened;
    }

    public static synchronized int references(Qwen3Engine engine) {
        return ENGINES.values().stream().filter(s -> s.engine == engine).mapToInt(s -> s.references).sum();
    }
}
