package io.flinkqwen3.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * deploy/bin/cluster-test inside CI (about a minute on 2 cores): Kafka, a JobManager and two
 * TaskManagers as separate processes, 1,000 prompts, one TaskManager killed with SIGKILL
 * mid-stream and replaced; every id exactly once, one engine per TaskManager.
 */
class ClusterFailoverTest {
    @Test
    void aKilledTaskManagerLosesAndDuplicatesNothing() throws Exception {
        var options = ClusterTest.Options.parse(Path.of("..").toAbsolutePath().normalize(),
                new String[] {"--records", "1000"});
        var result = ClusterTest.run(options);
        System.out.println(result);
        assertEquals(1000, result.path("records").asInt(), result.toString());
        assertEquals(0, result.path("lost").asInt(), result.toString());
        assertEquals(0, result.path("duplicated").asInt(), result.toString());
        assertEquals(0, result.path("dead_letters").asInt(), result.toString());
        assertTrue(result.path("job_restarts").asInt() >= 1, "the kill restarted the job: " + result);
        // one engine in each task manager that ran the job, whatever number of slots it gave
        var engines = result.path("engines_per_taskmanager");
        assertEquals(3, engines.size(), result.toString());
        engines.forEach(n -> assertEquals(1, n.asInt(), result.toString()));
        // once packed, the weights files' pages left the task managers' resident sets (they would count a second copy)
        double weights = result.path("weights_mb").asDouble();
        result.path("taskmanager_weights_rss_mb").forEach(mb -> assertTrue(mb.asDouble() < weights / 2,
                "mapped weights still resident: " + result));
    }
}
