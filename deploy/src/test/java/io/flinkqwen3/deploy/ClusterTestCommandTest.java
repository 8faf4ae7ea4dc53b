package io.flinkqwen3.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.ParameterException;

/** deploy/bin/cluster-test's command line: the documented ones parse, bad values are refused before anything starts. */
class ClusterTestCommandTest {
    static final Path REPO = Path.of("..").toAbsolutePath().normalize();
    static final String FIXTURE = REPO.resolve("../shared/fixtures/qwen3-dense-tiny").normalize().toString();

    @Test
    void theCommandLinesOfBothReadmesParse() throws Exception {
        int checked = 0;
        for (Path readme : List.of(REPO.resolve("README.md"), REPO.resolve("deploy/README.md"))) {
            for (String line : Files.readAllLines(readme)) {
                if (line.startsWith("deploy/bin/cluster-test")) {
                    String[] words = line.replaceFirst("#.*", "").trim().split("\\s+");
                    for (int i = 1; i + 1 < words.length; i++) {
                        if (words[i].equals("--model")) {
                            words[i + 1] = FIXTURE; // the example's model may not be on this machine
                        }
                    }
                    ClusterTest.Options.parse(REPO, Arrays.copyOfRange(words, 1, words.length));
                    checked++;
                }
            }
        }
        assertTrue(checked >= 2, "cluster-test command lines in the READMEs: " + checked);
    }

    @Test
    void badValuesNameTheFlag() {
        assertEquals("--records must be at least 1, got 0",
                assertThrows(ParameterException.class, () -> ClusterTest.Options.parse(REPO, "--records", "0")).getMessage());
        assertTrue(assertThrows(ParameterException.class, () -> ClusterTest.Options.parse(REPO, "--records", "many"))
                .getMessage().contains("'--records'"));
        assertTrue(assertThrows(ParameterException.class, () -> ClusterTest.Options.parse(REPO, "--model", "/no/such/model"))
                .getMessage().startsWith("--model '/no/such/model': no such file or folder"));
        assertTrue(assertThrows(ParameterException.class, () -> ClusterTest.Options.parse(REPO, "--nodes", "3"))
                .getMessage().contains("--nodes"));
    }

    @Test
    void aFailedJobIsExplainedByTheCauseFlinkQwen3Threw() {
        // the shape of Flink 2.2's GET /jobs/:id/exceptions, the chain of a model that cannot be loaded (cluster-test --model x/y)
        String qwen3 = "io.flinkqwen3.flink.TaskManagerEngines$ModelUnavailableException: Qwen3 model 'x/y' cannot be used: not in the cache";
        String trace = String.join("\n", "org.apache.flink.runtime.JobException: The failure is not recoverable",
                "\tat org.apache.flink.runtime.executiongraph.failover.ExecutionFailureHandler.handleFailure(ExecutionFailureHandler.java:190)",
                "Caused by: org.apache.flink.runtime.execution.SuppressRestartsException: Unrecoverable failure.",
                "Caused by: " + qwen3, "\tat io.flinkqwen3.flink.TaskManagerEngines.acquireForTask(TaskManagerEngines.java:60)",
                "Caused by: java.net.UnknownHostException: huggingface.co");
        var exceptions = new ObjectMapper().createObjectNode();
        var entries = exceptions.putObject("exceptionHistory").putArray("entries");
        entries.addObject().put("stacktrace", trace);
        assertEquals(qwen3, ClusterTest.rootCause(exceptions));

        entries.removeAll().addObject().put("stacktrace", trace.replace("Caused by: " + qwen3, ""));
        assertEquals("java.net.UnknownHostException: huggingface.co", ClusterTest.rootCause(exceptions));
        assertEquals("no exception recorded", ClusterTest.rootCause(new ObjectMapper().createObjectNode()));
    }
}
