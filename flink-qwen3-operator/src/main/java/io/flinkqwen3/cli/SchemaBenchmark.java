package io.flinkqwen3.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flinkqwen3.model.ModelConfig;
import io.flinkqwen3.model.ModelLocator;
import io.flinkqwen3.runtime.JsonConstraint;
import io.flinkqwen3.runtime.JsonSchemaGrammar;
import io.flinkqwen3.runtime.Sampler;
import io.flinkqwen3.runtime.SamplingParams;
import io.flinkqwen3.runtime.TokenMask;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

/**
 * The cost of JSON-schema constrained decoding per generated token, without the model: a batch of
 * constrained requests is stepped on random logits of the model's vocabulary size, and only the
 * constraint's work is timed (the mask for the state and the tokens left, applied to the logit
 * row, and the state advanced over the sampled token), the same calls a decode step makes per
 * request. Cold: masks built on first use; warm: the same states again. Compare with a decode
 * step of the model ({@code qwen3 bench --batch 16}).
 */
@Command(name = "bench-schema", mixinStandardHelpOptions = true,
        description = "Per-token overhead of JSON-schema constrained decoding (mask + advance), cold and warm, at a batch size.")
final class SchemaBenchmark implements Callable<Integer> {
    @ParentCommand
    Qwen3Cli cli;
    @Spec
    CommandSpec spec;
    @Mixin
    Qwen3Cli.ModelOption model;
    @Option(names = "--json-schema", required = true, paramLabel = "FILE", description = "The JSON Schema.")
    Path schemaFile;
    @Option(names = "--batch", paramLabel = "N", defaultValue = "16", description = "Requests per step (default: ${DEFAULT-VALUE}).")
    int batch;
    @Option(names = "--steps", paramLabel = "N", defaultValue = "256", description = "Decode steps timed (default: ${DEFAULT-VALUE}).")
    int steps;
    @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "96",
            description = "Tokens per request; a finished request restarts (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Override
    public Integer call() throws IOException {
        // first: a schema that is no JSON or unsupported is a usage error before the model's files are read
        // (the time includes the file read and the first compile's class loading)
        long compileStart = System.nanoTime();
        JsonSchemaGrammar grammar = Qwen3Cli.readJsonSchema(spec, schemaFile).grammar();
        long compileNanos = System.nanoTime() - compileStart;
        Path dir = ModelLocator.resolve(model.location);
        Qwen3Tokenizer tokenizer = Qwen3Cli.tokenizer(model.location);
        int vocab = Files.exists(dir.resolve("config.json")) ? ModelConfig.read(dir.resolve("config.json")).vocabSize()
                : tokenizer.vocabSize();
        long t0 = System.nanoTime();
        tokenizer.trie();
        long t1 = System.nanoTime();
        var stop = Set.of(tokenizer.tokenId("<|im_end|>"), tokenizer.tokenId("<|endoftext|>"));
        var constraint = new JsonConstraint(grammar, tokenizer, stop);
        if (maxTokens < constraint.minTokens()) {
            throw new IllegalArgumentException("--max-tokens " + maxTokens + " is below the schema's minimum " + constraint.minTokens());
        }
        double cold = run(constraint, vocab, stop, 1);
        double warm = run(constraint, vocab, stop, 1);
        ObjectNode json = Qwen3Cli.JSON.createObjectNode();
        json.put("vocab", vocab);
        json.put("batch", batch);
        json.put("trie_build_ms", (t1 - t0) / 1e6);
        json.put("schema_compile_ms", compileNanos / 1e6);
        json.put("grammar_states", grammar.states());
        json.put("masks_built", constraint.cachedMasks());
        json.put("cold_us_per_token", cold);
        json.put("warm_us_per_token", warm);
        json.put("warm_ms_per_step_at_batch", warm * batch / 1000);
        cli.out.println(json);
        return 0;
    }

    /** Mean microseconds of constraint work per generated token over the steps (seeded: both runs see the same tokens). */
    private double run(JsonConstraint c, int vocab, Set<Integer> stop, long seed) {
        var random = new SplittableRandom(seed);
        int[] state = new int[batch];
        int[] generated = new int[batch];
        Sampler[] samplers = new Sampler[batch];
        for (int b = 0; b < batch; b++) {
            state[b] = c.start();
            samplers[b] = new Sampler(new SamplingParams(1f, 20, 1f, 0f, 0f, seed + b));
        }
        float[] logits = new float[vocab];
        long nanos = 0, tokens = 0;
        for (int step = 0; step < steps; step++) {
            for (int b = 0; b < batch; b++) {
                for (int i = 0; i < vocab; i++) {
                    logits[i] = (float) random.nextGaussian() * 4;
                }
                long start = System.nanoTime();
                TokenMask mask = c.mask(state[b], maxTokens - generated[b]);
                mask.apply(logits, 0, vocab);
                nanos += System.nanoTime() - start;
                int token = samplers[b].sample(logits, 0, vocab);
                start = System.nanoTime();
                int next = c.advance(state[b], token);
                nanos += System.nanoTime() - start;
                tokens++;
                generated[b]++;
                if (stop.contains(token)) {
                    state[b] = c.start(); // the request is done: a new one takes its place
                    generated[b] = 0;
                } else {
                    state[b] = next;
                }
            }
        }
        Arrays.fill(logits, 0f);
        return nanos / 1e3 / tokens;
    }
}
