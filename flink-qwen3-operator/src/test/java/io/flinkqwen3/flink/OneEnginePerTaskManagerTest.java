package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.flinkqwen3.testing.Fixtures;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.junit.jupiter.api.Test;

/** A MiniCluster job with one task manager and four slots: four inference subtasks, one engine. */
class OneEnginePerTaskManagerTest {
    @Test
    void fourSubtasksShareOneEngine() throws Exception {
        var cluster = new Configuration();
        cluster.set(TaskManagerOptions.NUM_TASK_SLOTS, 4);
        var env = StreamExecutionEnvironment.createLocalEnvironment(4, cluster);

        List<PromptRecord> prompts = new ArrayList<>();
        for (int i = 0; i < 24; i++) {
            prompts.add(PromptRecord.of("q" + i, "Tell me about item " + i));
        }
        int openedBefore = TaskManagerEngines.enginesOpenedSinceStart();
        var completions = Qwen3Inference.builder()
                .model(Fixtures.MOE.toString())
                .option(Qwen3Options.THREADS, 2)
                .option(Qwen3Options.DEFAULT_MAX_TOKENS, 8)
                .build()
                .apply(env.fromData(TypeInformation.of(PromptRecord.class), prompts.toArray(PromptRecord[]::new))
                        .rebalance())
                .setParallelism(4);

        var ids = new TreeSet<String>();
        try (var results = completions.executeAndCollect()) {
            results.forEachRemaining(c -> ids.add(c.id));
        }
        assertEquals(24, ids.size());
        assertEquals(openedBefore + 1, TaskManagerEngines.enginesOpenedSinceStart(),
                "four parallel subtasks in one task manager opened the model once");
        assertEquals(0, TaskManagerEngines.openEngines(), "closed when the job ended");
    }
}
