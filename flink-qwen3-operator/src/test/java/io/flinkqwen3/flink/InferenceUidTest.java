package io.flinkqwen3.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamNode;
import org.junit.jupiter.api.Test;

/** Several inference steps in one job: distinct, stable uids (the job graph rejects duplicates). */
class InferenceUidTest {
    private static DataStream<PromptRecord> prompts(StreamExecutionEnvironment env, String uid) {
        return env.fromData(TypeInformation.of(PromptRecord.class), PromptRecord.of("a", "hi")).uid(uid).name(uid);
    }

    private static List<String> inferenceUids(StreamExecutionEnvironment env) {
        var graph = env.getStreamGraph(false);
        graph.getJobGraph(); // hashes the uids: a duplicate fails here
        List<String> uids = new ArrayList<>();
        for (StreamNode node : graph.getStreamNodes()) {
            if (node.getOperatorName().equals("Qwen3 inference")) {
                uids.add(node.getTransformationUID());
            }
        }
        return uids.stream().sorted().toList();
    }

    @Test
    void stepsOnOtherInputsOrModelsGetDistinctDefaultUids() {
        var env = StreamExecutionEnvironment.getExecutionEnvironment();
        var first = prompts(env, "prompts-a");
        Qwen3Inference.builder().model("/models/a").build().apply(first).print();
        Qwen3Inference.builder().model("/models/a").build().apply(prompts(env, "prompts-b")).print();
        Qwen3Inference.builder().model("/models/b").build().apply(first).print();
        assertEquals(List.of("qwen3-inference:/models/a:prompts-a", "qwen3-inference:/models/a:prompts-b",
                "qwen3-inference:/models/b:prompts-a"), inferenceUids(env));
    }

    @Test
    void theBuildersUidSeparatesTwoStepsWithOneModelOnOneInput() {
        var env = StreamExecutionEnvironment.getExecutionEnvironment();
        var input = prompts(env, "prompts");
        Qwen3Inference.builder().model("/models/a").uid("summaries").build().apply(input).print();
        Qwen3Inference.builder().model("/models/a").uid("labels").build().apply(input).print();
        assertEquals(List.of("labels", "summaries"), inferenceUids(env));

        var clash = StreamExecutionEnvironment.getExecutionEnvironment();
        var same = prompts(clash, "prompts");
        Qwen3Inference.builder().model("/models/a").build().apply(same).print();
        Qwen3Inference.builder().model("/models/a").build().apply(same).print();
        var e = assertThrows(IllegalArgumentException.class, () -> inferenceUids(clash));
        assertTrue(e.getMessage().contains("qwen3-inference:/models/a:prompts"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Qwen3Inference.builder().uid(" "));
    }
}
