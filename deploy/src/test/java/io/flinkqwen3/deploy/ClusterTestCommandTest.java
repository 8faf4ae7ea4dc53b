package io.flinkqwen3.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine.ParameterException;

/** deploy/bin/cluster-test's command line: the documented ones parse, bad values are refused before anything starts. */
class ClusterTestCommandTest {
    static final Path REPO = Path.of("..").toAbsolutePath().normalize();

    @Test
    void theCommandLinesOfBothReadmesParse() throws Exception {
        int checked = 0;
        for (Path readme : List.of(REPO.resolve("README.md"), REPO.resolve("deploy/README.md"))) {
            for (String line : Files.readAllLines(readme)) {
                if (line.startsWith("deploy/bin/cluster-test")) {
                    String[] words = line.replaceFirst("#.*", "").trim().split("\\s+");
                    var options = ClusterTest.Options.parse(REPO, Arrays.copyOfRange(words, 1, words.length));
                    assertTrue(options.records() >= 1000, "the issue asks for at least 1,000 prompts: " + line);
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
}
