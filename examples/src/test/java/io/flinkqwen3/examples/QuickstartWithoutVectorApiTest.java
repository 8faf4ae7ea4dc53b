package io.flinkqwen3.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quickstart in a JVM started without {@code --add-modules jdk.incubator.vector}: the job fails
 * at once, without restarts, with a message naming the Flink option, not a NoClassDefFoundError.
 */
class QuickstartWithoutVectorApiTest {
    @Test
    void aJvmWithoutTheVectorModuleFailsTheJobNamingTheFlinkOption(@TempDir Path dir) throws Exception {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx512m", "-XX:+UseSerialGC", "--enable-native-access=ALL-UNNAMED"));
        // the Flink opens of the surefire JVM, without the Vector API module
        for (String arg : ProcessHandle.current().info().arguments().orElseThrow()) {
            if (arg.startsWith("--add-opens")) {
                command.add(arg);
            }
        }
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Quickstart.class.getName(),
                "--model", Path.of("../../shared/fixtures/qwen3-dense-tiny").toAbsolutePath().normalize().toString(),
                "--prompts", "1", "--max-tokens", "2"));
        Path log = dir.resolve("quickstart.log");
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            assertTrue(process.waitFor(120, TimeUnit.SECONDS), "the quickstart did not end within 120 s");
        } finally {
            process.destroyForcibly();
        }
        String output = Files.readString(log, StandardCharsets.UTF_8);
        assertEquals(1, process.exitValue(), output);
        assertTrue(output.contains("quickstart: the job failed: Qwen3 needs the Vector API, but this JVM (Java "), output);
        assertTrue(output.contains("'env.java.opts.all: --add-modules=jdk.incubator.vector'"), output);
        assertFalse(output.contains("NoClassDefFoundError"), output);
    }
}
