package io.flinkqwen3.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.tensor.Parallel;
import io.flinkqwen3.testing.Fixtures;
import org.junit.jupiter.api.Test;

/** --threads beyond what the machine can use is a usage error, before anything is loaded or started. */
class ThreadsOptionTest {
    @Test
    void everyCommandRefusesThreadCountsThatMakeNoSense() {
        int max = Parallel.maxThreads();
        String model = Fixtures.DENSE.toString();
        String[][] commands = {
                {"generate", "--model", model, "--prompt", "hi", "--max-tokens", "1"},
                {"logits", "--model", model, "--tokens", "1,2"},
                {"bench", "--model", model, "--prompt", "4", "--gen", "1", "--batch", "1", "--reps", "1"},
                {"synth", "--shape", "qwen3-0.6b", "--layers", "1", "--out", "/nonexistent/never-written"}};
        for (String[] command : commands) {
            for (String threads : new String[] {"5000", "0", String.valueOf(max + 1)}) {
                String[] args = java.util.Arrays.copyOf(command, command.length + 2);
                args[command.length] = "--threads";
                args[command.length + 1] = threads;
                var run = Qwen3CliTest.run(args);
                String message = run.err();
                assertEquals(2, run.code(), command[0] + " --threads " + threads + ": " + message);
                assertTrue(message.startsWith("qwen3 " + command[0] + ": --threads must be between 1 and " + max + " (4 per available processor, "
                        + Runtime.getRuntime().availableProcessors() + " here, at most 256), got " + threads + "\n"),
                        command[0] + ": " + message);
                assertTrue(message.indexOf('\n') == message.indexOf("\n\nUsage: qwen3 " + command[0]),
                        "refused before loading, the usage follows at once: " + message);
            }
        }
    }
}
