package io.flinkqwen3.flink;

import java.util.Optional;
import org.apache.flink.runtime.execution.SuppressRestartsException;

/**
 * Whether this JVM can run the kernels: they use the Vector API, an incubator module that a JVM
 * resolves only when asked ({@code --add-modules jdk.incubator.vector}). Without it, the first
 * kernel class fails to load with a bare {@code NoClassDefFoundError} inside the task, and the job
 * restarts forever. Checked once where every operator and ML_PREDICT function opens its engine
 * ({@link TaskManagerEngines#acquireForTask}), before any kernel class is touched; this class
 * itself references none. (A JVM older than 25 never gets here: the plugin's classes are Java 25
 * class files, version 69, which it refuses with {@code UnsupportedClassVersionError}.)
 */
public final class VectorApiCheck {
    static final String MODULE = "jdk.incubator.vector";
    /** The Flink option that puts the module into every Flink JVM. */
    public static final String FLINK_OPTION = "env.java.opts.all: --add-modules=" + MODULE;

    private VectorApiCheck() {}

    /**
     * Fails the job without restarts (a restarted task would fail the same way) when the Vector API
     * module is missing from this JVM or not readable by this code.
     *
     * @throws SuppressRestartsException whose cause's message names the Flink option to set
     */
    public static void requireVectorApi() {
        String problem = problem(ModuleLayer.boot().findModule(MODULE), VectorApiCheck.class.getModule(),
                Runtime.version().toString());
        if (problem != null) {
            throw new SuppressRestartsException(new IllegalStateException(problem));
        }
    }

    /** Why the kernels cannot run with this module (absent when the JVM did not resolve it), or null when they can. */
    static String problem(Optional<Module> vector, Module caller, String javaVersion) {
        if (vector.isEmpty()) {
            return "Qwen3 needs the Vector API, but this JVM (Java " + javaVersion + ") was started without the module "
                    + MODULE + ": add it to every Flink JVM in the Flink configuration, '" + FLINK_OPTION
                    + "' (or start the JVM with --add-modules " + MODULE + ")";
        }
        if (!caller.canRead(vector.get())) {
            return "Qwen3 needs the Vector API, but " + caller + " cannot read the module " + MODULE
                    + " (Java " + javaVersion + "): load the plugin jar from the class path (Flink's lib/ or the job jar) and set '"
                    + FLINK_OPTION + "'";
        }
        return null;
    }
}
