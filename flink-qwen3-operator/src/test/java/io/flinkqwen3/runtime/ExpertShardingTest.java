package io.flinkqwen3.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.testing.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The experts split into shards compute what one shard computes (within 1e-5), on the MoE fixture
 * as safetensors and as GGUF, for 2 and 3 shards and more shards than the fixture has experts, over
 * enough decode steps that the shards are re-planned.
 */
class ExpertShardingTest {
    static Stream<Path> checkpoints() {
        return Stream.of(Fixtures.MOE, Fixtures.GGUF.resolve("qwen3-moe-tiny-bf16.gguf"));
    }

    @ParameterizedTest
    @MethodSource("checkpoints")
    void shardedEqualsUnsharded(Path location) {
        List<float[]> unsharded = run(location, 1);
        for (int shards : new int[] {2, 3, 16}) { // 16: more shards than the fixture's 8 experts
            List<float[]> sharded = run(location, shards);
            assertEquals(unsharded.size(), sharded.size());
            for (int pass = 0; pass < unsharded.size(); pass++) {
                assertArrayEquals(unsharded.get(pass), sharded.get(pass), 1e-5f, shards + " shards, forward pass " + pass);
            }
        }
    }

    /**
     * The logits of each forward pass: every prompt's prefill (every position), then all prompts
     * decoding together for more than {@link ExpertShards#REPLAN_EVERY} steps from fixed pseudo-random tokens.
     */
    private static List<float[]> run(Path location, int shards) {
        var ref = new Fixtures.Reference(Fixtures.MOE.resolve("reference.safetensors"));
        var logits = new ArrayList<float[]>();
        try (var model = Qwen3Model.load(Checkpoints.open(location), Fixtures.PARALLEL, shards)) {
            var config = model.config();
            int n = ref.prompts(), steps = ExpertShards.REPLAN_EVERY + 8;
            KvCache[] caches = new KvCache[n];
            int[] positions = new int[n], rows = new int[n];
            for (int s = 0; s < n; s++) {
                int[] ids = ref.ints("p" + s + ".ids");
                caches[s] = model.newCache(ids.length + steps);
                logits.add(model.prefill(ids, caches[s], true, ForwardObserver.NONE));
                positions[s] = ids.length;
                rows[s] = s;
            }
            var random = new SplittableRandom(1);
            for (int step = 0; step < steps; step++) {
                int[] tokens = random.ints(n, 0, config.vocabSize()).toArray();
                logits.add(model.forward(tokens, positions.clone(), caches, rows, ForwardObserver.NONE));
                Arrays.setAll(positions, s -> positions[s] + 1);
                var load = model.lastExpertShardLoad();
                assertEquals(shards, load.tokensPerShard().length);
                assertEquals((long) n * config.numExpertsPerTok() * config.numLayers(), Arrays.stream(load.tokensPerShard()).sum(),
                        "every token's top-k experts counted once per MoE layer");
            }
        }
        return logits;
    }
}
