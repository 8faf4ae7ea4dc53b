package io.flinkqwen3.flink;

import io.flinkqwen3.runtime.EngineOptions;
import io.flinkqwen3.runtime.Qwen3Engine;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;
import java.util.logging.Logger;

/**
 * One {@link Qwen3Engine} per task manager and model: a static, reference-counted registry (the
 * pattern Flink's own model providers use for shared clients). Operators acquire in open() and
 * release in close(); the last release closes the engine and unmaps the weights.
 */
public final class TaskManagerEngines {
    private static final Logger LOG = Logger.getLogger(TaskManagerEngines.class.getName());
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

    static synchronized Qwen3Engine acquire(String model, EngineOptions options, Function<String, Qwen3Engine> open) {
        Shared shared = ENGINES.get(key(model, options));
        if (shared == null) {
            shared = new Shared(open.apply(model));
            ENGINES.put(key(model, options), shared);
            opened++;
            LOG.info("opened the task manager's Qwen3 engine for " + model);
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
