package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;

class VectorApiCheckTest {
    private static final Module VECTOR = ModuleLayer.boot().findModule(VectorApiCheck.MODULE).orElseThrow(
            () -> new AssertionError("the tests run with --add-modules jdk.incubator.vector"));

    @Test
    void passesWhenTheModuleIsResolvedAndReadable() {
        assertNull(VectorApiCheck.problem(Optional.of(VECTOR), VectorApiCheck.class.getModule(), "25"));
        VectorApiCheck.requireVectorApi();
    }

    @Test
    void aJvmWithoutTheModuleIsToldWhichFlinkOptionToSet() {
        String problem = VectorApiCheck.problem(Optional.empty(), VectorApiCheck.class.getModule(), "25.0.1+8-LTS");
        assertEquals("Qwen3 needs the Vector API, but this JVM (Java 25.0.1+8-LTS) was started without the module "
                + "jdk.incubator.vector: add it to every Flink JVM in the Flink configuration, "
                + "'env.java.opts.all: --add-modules=jdk.incubator.vector' (or start the JVM with --add-modules jdk.incubator.vector)",
                problem);
    }

    @Test
    void codeInAModuleThatDoesNotReadItIsToldToo() {
        // java.base reads no other module: the case of plugin code loaded as a named module
        String problem = VectorApiCheck.problem(Optional.of(VECTOR), Object.class.getModule(), "25");
        assertTrue(problem.contains("module java.base cannot read the module jdk.incubator.vector"), problem);
        assertTrue(problem.contains(VectorApiCheck.FLINK_OPTION), problem);
    }
}
