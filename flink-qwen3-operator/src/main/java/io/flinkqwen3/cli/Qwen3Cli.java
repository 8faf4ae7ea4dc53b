package io.flinkqwen3.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.flinkqwen3.model.Checkpoint;
import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.model.ModelLocator;
import io.flinkqwen3.model.QuantizedCheckpoint;
import io.flinkqwen3.runtime.EngineOptions;
import io.flinkqwen3.runtime.ForwardObserver;
import io.flinkqwen3.runtime.GenerationRequest;
import io.flinkqwen3.runtime.GenerationResult;
import io.flinkqwen3.runtime.Qwen3Engine;
import io.flinkqwen3.runtime.Qwen3Model;
import io.flinkqwen3.runtime.SamplingParams;
import io.flinkqwen3.runtime.TopK;
import io.flinkqwen3.tensor.Parallel;
import io.flinkqwen3.tokenizer.ChatMessage;
import io.flinkqwen3.tokenizer.ChatTemplate;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/** The {@code qwen3} command: tokenize, render, logits, generate. */
public final class Qwen3Cli {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String USAGE = """
            usage: qwen3 <command> [options]
              tokenize --model DIR --text TEXT
              render   --model DIR --messages FILE [--no-thinking]
              logits   --model DIR --tokens 1,2,3 [--top 10] [--threads N]
              generate --model LOCATION (--prompt TEXT | --tokens IDS) [--no-thinking] [--thinking-budget N]
                       [--max-tokens N] [--temperature T] [--seed S] [--threads N] [--quantize q8_0|q4_0] [--json]
              bench    --model LOCATION [--quantize q8_0|q4_0] [--threads 2] [--prompt 512] [--gen 128]
                       [--batch 1,4,16] [--reps 3] [--expert-shards N (MoE; default: threads)]
                       [--bandwidth-gbs GB/s (default: measured)] [--json]
              synth    --shape qwen3-0.6b|qwen3-8b|qwen3-30b-a3b [--layers N] [--dtype bf16] --out DIR [--tokenizer DIR]
            LOCATION: a model directory, a .gguf file or a Hugging Face repo id (Qwen/Qwen3-0.6B)""";

    private final PrintStream out;

    Qwen3Cli(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] argv) {
        var out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        System.exit(new Qwen3Cli(out).run(argv));
    }

    int run(String[] argv) {
        if (argv.length == 0 || argv[0].equals("--help") || argv[0].equals("help")) {
            System.err.println(USAGE);
            return argv.length == 0 ? 2 : 0;
        }
        List<String> rest = Arrays.asList(argv).subList(1, argv.length);
        try {
            switch (argv[0]) {
                case "tokenize" -> tokenize(new Args(rest, Set.of("--model", "--text"), Set.of()));
                case "render" -> render(new Args(rest, Set.of("--model", "--messages"), Set.of("--no-thinking")));
                case "logits" -> logits(new Args(rest, Set.of("--model", "--tokens", "--top", "--threads"), Set.of()));
                case "generate" -> generate(new Args(rest, Set.of("--model", "--prompt", "--tokens", "--thinking-budget",
                        "--max-tokens", "--temperature", "--seed", "--threads", "--quantize"), Set.of("--no-thinking", "--json")));
                case "bench" -> Benchmark.run(new Args(rest, Set.of("--model", "--quantize", "--threads", "--prompt", "--gen",
                        "--batch", "--reps", "--expert-shards", "--bandwidth-gbs"), Set.of("--json")), out);
                case "synth" -> synth(new Args(rest, Set.of("--shape", "--layers", "--dtype", "--out", "--tokenizer", "--threads"),
                        Set.of()));
                default -> throw new Args.UsageException("unknown command '" + argv[0] + "'");
            }
            return 0;
        } catch (Args.UsageException e) {
            System.err.println("qwen3: " + e.getMessage() + "\n" + USAGE);
            return 2;
        } catch (RuntimeException e) {
            System.err.println("qwen3 " + argv[0] + ": " + e.getMessage());
            return 1;
        }
    }

    private static Qwen3Tokenizer tokenizer(String location) {
        Path path = ModelLocator.resolve(location);
        Qwen3Tokenizer tokenizer = Checkpoints.tokenizer(path);
        if (tokenizer == null) {
            throw new IllegalArgumentException(path.resolve("tokenizer.json") + ": file missing (this model ships no tokenizer; use token ids)");
        }
        return tokenizer;
    }

    private void tokenize(Args args) throws RuntimeException {
        int[] ids = tokenizer(args.required("--model")).encode(args.required("--text"));
        out.print(toJson(ids));
        out.println();
    }

    private void render(Args args) {
        Path file = Path.of(args.required("--messages"));
        List<ChatMessage> messages = new ArrayList<>();
        try {
            JsonNode list = JSON.readTree(Files.readString(file));
            if (!list.isArray()) {
                throw new IllegalArgumentException(file + ": expected a JSON list of {\"role\", \"content\"} objects");
            }
            for (JsonNode m : list) {
                messages.add(new ChatMessage(m.path("role").asText(null), m.path("content").asText(""),
                        m.hasNonNull("reasoning_content") ? m.get("reasoning_content").asText() : null));
            }
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException(file + ": cannot read messages (" + e.getMessage() + ")", e);
        }
        tokenizer(args.required("--model")); // validates the model location like the other commands
        boolean generationPrompt = messages.isEmpty() || !messages.get(messages.size() - 1).role().equals("assistant");
        out.print(ChatTemplate.render(messages, generationPrompt, !args.has("--no-thinking")));
        out.flush();
    }

    private void logits(Args args) {
        int[] ids = Args.parseIds(args.required("--tokens"));
        int top = args.intValue("--top", 10);
        int threads = args.threads();
        Path dir = ModelLocator.resolve(args.required("--model"));
        try (Checkpoint checkpoint = Checkpoints.open(dir);
             var parallel = new Parallel(threads);
             var model = Qwen3Model.load(checkpoint, parallel)) {
            int vocab = model.config().vocabSize();
            for (int id : ids) {
                if (id < 0 || id >= vocab) {
                    throw new IllegalArgumentException("token id " + id + " is outside the vocabulary [0, " + vocab + ")");
                }
            }
            float[] logits = model.prefill(ids, model.newCache(ids.length), true, ForwardObserver.NONE);
            for (int p = 0; p < ids.length; p++) {
                int off = p * vocab;
                int[] best = TopK.indices(logits, off, vocab, Math.min(top, vocab));
                ObjectNode line = JSON.createObjectNode();
                line.put("position", p);
                var idsNode = line.putArray("top_ids");
                var logitNode = line.putArray("top_logits");
                for (int b : best) {
                    idsNode.add(b);
                    logitNode.add(logits[off + b]);
                }
                line.put("logsumexp", logSumExp(logits, off, vocab));
                out.println(line);
            }
        }
    }

    private void generate(Args args) {
        var request = GenerationRequest.builder();
        if (args.has("--prompt") == args.has("--tokens")) {
            throw new Args.UsageException("give exactly one of --prompt or --tokens");
        }
        if (args.has("--prompt")) {
            request.user(args.get("--prompt"));
        } else {
            request.promptTokens(Args.parseIds(args.get("--tokens")));
        }
        boolean thinking = !args.has("--no-thinking");
        int budget = args.intValue("--thinking-budget", GenerationRequest.UNLIMITED);
        request.enableThinking(thinking).thinkingBudget(budget).maxTokens(args.intValue("--max-tokens", 512));
        long seed = args.has("--seed") ? args.intValue("--seed", 0) : System.nanoTime();
        long loadStart = System.nanoTime();
        var options = EngineOptions.defaults().withThreads(args.threads())
                .withQuantize(args.has("--quantize") ? QuantizedCheckpoint.parseFormat(args.get("--quantize")) : null);
        try (var engine = Qwen3Engine.open(args.required("--model"), options)) {
            double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
            var sampling = SamplingParams.recommended(thinking && budget != 0, engine.model().checkpoint().generationConfig(), seed);
            if (args.has("--temperature")) {
                sampling = sampling.withTemperature(args.floatValue("--temperature", sampling.temperature()));
            }
            long start = System.nanoTime();
            GenerationResult result = engine.generate(request.sampling(sampling).build());
            double seconds = (System.nanoTime() - start) / 1e9;
            int generated = result.outputTokens().length;
            if (args.has("--json")) {
                ObjectNode json = JSON.createObjectNode();
                json.put("answer", result.answer());
                json.put("reasoning", result.reasoning());
                json.put("finish_reason", result.finishReason().wireName());
                json.put("prompt_tokens", result.promptTokens());
                json.put("thinking_tokens", result.thinkingTokens());
                json.put("answer_tokens", result.answerTokens());
                json.put("thinking_budget", result.thinkingBudget());
                json.put("budget_exhausted", result.budgetExhausted());
                var tokens = json.putArray("output_tokens");
                Arrays.stream(result.outputTokens()).forEach(tokens::add);
                json.put("load_seconds", loadSeconds);
                json.put("tokens_per_second", generated / seconds);
                out.println(json);
            } else {
                if (!result.reasoning().isEmpty()) {
                    System.err.println("<think>\n" + result.reasoning() + "\n</think>");
                }
                out.println(engine.tokenizer() == null ? toJson(result.outputTokens()) : result.answer());
                System.err.printf("[%d prompt + %d generated tokens, %s, %.1f tok/s, load %.2f s]%n", result.promptTokens(),
                        generated, result.finishReason().wireName(), generated / seconds, loadSeconds);
            }
        }
    }

    private void synth(Args args) {
        if (args.has("--dtype") && !args.get("--dtype").equalsIgnoreCase("bf16")) {
            throw new Args.UsageException("synth writes bf16 weights (use --quantize at load time for q8_0/q4_0)");
        }
        var shape = SyntheticCheckpoint.Shape.named(args.required("--shape"));
        if (args.has("--layers")) {
            shape = shape.withLayers(args.intValue("--layers", shape.layers()));
        }
        try {
            SyntheticCheckpoint.write(shape, Path.of(args.required("--out")),
                    args.has("--tokenizer") ? Path.of(args.get("--tokenizer")) : null,
                    args.threads(), System.err);
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("cannot write " + args.get("--out") + ": " + e.getMessage(), e);
        }
    }

    static double logSumExp(float[] x, int off, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[off + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(x[off + i] - max);
        }
        return max + Math.log(sum);
    }

    private static String toJson(int[] ids) {
        var sb = new StringBuilder("[");
        for (int i = 0; i < ids.length; i++) {
            sb.append(i == 0 ? "" : ",").append(ids[i]);
        }
        return sb.append(']').toString();
    }
}
