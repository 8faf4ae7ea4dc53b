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
import io.flinkqwen3.runtime.JsonSchemaGrammar;
import io.flinkqwen3.runtime.Qwen3Engine;
import io.flinkqwen3.runtime.Qwen3Model;
import io.flinkqwen3.runtime.SamplingParams;
import io.flinkqwen3.runtime.TopK;
import io.flinkqwen3.tensor.DType;
import io.flinkqwen3.tensor.Kernels;
import io.flinkqwen3.tensor.Parallel;
import io.flinkqwen3.tokenizer.ChatMessage;
import io.flinkqwen3.tokenizer.ChatTemplate;
import io.flinkqwen3.tokenizer.Qwen3Tokenizer;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * The {@code qwen3} command: tokenize, render, logits, generate, classify, bench, bench-schema, bench-classify, bench-kv, synth. Results go to
 * stdout, progress and errors to stderr. Exit codes: 0 done (and {@code --help}), 1 the work
 * failed (a model that cannot be read, ...), 2 the command line is wrong (unknown option, a value
 * out of range), with a message naming the option and the command's usage.
 */
@Command(name = "qwen3", mixinStandardHelpOptions = true, versionProvider = Commands.Version.class,
        description = "Qwen3 (dense and MoE) inference in pure Java.",
        subcommands = {Qwen3Cli.Generate.class, Qwen3Cli.Classify.class, Qwen3Cli.Tokenize.class, Qwen3Cli.Render.class, Qwen3Cli.Logits.class,
                Benchmark.class, SchemaBenchmark.class, ClassifyBenchmark.class, KvMemoryBenchmark.class, Qwen3Cli.Synth.class, CommandLine.HelpCommand.class},
        footer = {"", "LOCATION: a model directory, a .gguf file or a Hugging Face repo id such as Qwen/Qwen3-0.6B[@revision]",
                "(downloaded into the Hugging Face cache); a path that exists is always taken as a path.",
                "Run 'qwen3 COMMAND --help' for the options of a command."})
public final class Qwen3Cli implements Callable<Integer> {
    static final ObjectMapper JSON = new ObjectMapper();
    /** The highest --temperature (the operator's limit too). */
    static final float MAX_TEMPERATURE = 100;

    final PrintStream out;
    final PrintStream err;
    @Spec
    CommandSpec spec;

    Qwen3Cli(PrintStream out, PrintStream err) {
        this.out = out;
        this.err = err;
    }

    public static void main(String[] argv) {
        var out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        var err = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        System.exit(new Qwen3Cli(out, err).run(argv));
    }

    /** Runs one command line; returns the exit code. */
    int run(String... argv) {
        return Commands.execute(this, out, err, argv);
    }

    /** Runs one qwen3 command line in this JVM, printing to {@code out} and {@code err}; returns the exit code. */
    public static int run(PrintStream out, PrintStream err, String... argv) {
        return new Qwen3Cli(out, err).run(argv);
    }

    /** Parses one qwen3 command line without running it: a usage error throws picocli's ParameterException. */
    public static void parse(String... argv) {
        var none = new PrintStream(java.io.OutputStream.nullOutputStream());
        Commands.commandLine(new Qwen3Cli(none, none), none, none).parseArgs(argv);
    }

    @Override
    public Integer call() {
        throw new ParameterException(spec.commandLine(), "a command is required");
    }

    /** --model, required by every command that reads a model. */
    static final class ModelOption {
        @Option(names = "--model", required = true, paramLabel = "LOCATION",
                description = "A model directory or .gguf file (a path that exists is always a path), else a Hugging Face "
                        + "repo id such as Qwen/Qwen3-0.6B[@revision], downloaded into the Hugging Face cache.")
        String location;
    }

    /** --quantize q8_0|q4_0: the weight type BF16/F16/F32 checkpoints are converted to at load time (null: none). */
    static final class QuantizeOption {
        @Option(names = "--quantize", paramLabel = "q8_0|q4_0", converter = QuantizeConverter.class,
                description = "Convert BF16/F16/F32 weights at load time.")
        DType type;
    }

    /** --threads, checked when parsed, before anything is loaded. */
    static final class ThreadsOption {
        @Spec(Spec.Target.MIXEE)
        CommandSpec command;
        int threads = Runtime.getRuntime().availableProcessors();

        @Option(names = "--threads", paramLabel = "N",
                description = "Kernel threads: 1 to 4 per processor, at most 256 (default: the available processors).")
        void threads(int n) {
            try {
                Parallel.checkThreads("--threads", n);
            } catch (IllegalArgumentException e) {
                throw new ParameterException(command.commandLine(), e.getMessage());
            }
            threads = n;
        }
    }

    /** Comma-separated integers ("1,4,16"), one option value; the message says which item is not an integer. */
    record Ints(int[] values) {}

    static final class IntsConverter implements ITypeConverter<Ints> {
        @Override
        public Ints convert(String value) {
            String[] parts = value.split(",", -1);
            int[] ints = new int[parts.length];
            for (int i = 0; i < parts.length; i++) {
                try {
                    ints[i] = Integer.parseInt(parts[i].trim());
                } catch (NumberFormatException e) {
                    throw new TypeConversionException("'" + parts[i] + "' is not an integer (expected comma-separated integers such as 1,4,16)");
                }
            }
            return new Ints(ints);
        }
    }

    /** Comma-separated token ids: as {@link IntsConverter}, and a negative id is refused while parsing, before any model loads. */
    static final class TokenIdsConverter implements ITypeConverter<Ints> {
        @Override
        public Ints convert(String value) {
            Ints ids = new IntsConverter().convert(value);
            for (int id : ids.values()) {
                if (id < 0) {
                    throw new TypeConversionException("token id " + id + " is negative (token ids are 0 or more)");
                }
            }
            return ids;
        }
    }

    /**
     * Refuses, as a usage error, a token id at or beyond the model's vocabulary ({@code vocab}, from
     * the checkpoint's config: known before the weights load).
     */
    static void checkTokenIds(CommandSpec spec, String option, int[] ids, int vocab) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] >= vocab) {
                throw new ParameterException(spec.commandLine(), option + ": token id " + ids[i] + " (item " + (i + 1)
                        + ") is outside the model's vocabulary [0, " + vocab + ")");
            }
        }
    }

    /** Comma-separated labels, one option value: "positive, negative" is [positive, negative] (Labels refuses an empty one). */
    record LabelList(List<String> values) {}

    static final class LabelListConverter implements ITypeConverter<LabelList> {
        @Override
        public LabelList convert(String value) {
            return new LabelList(Arrays.stream(value.split(",", -1)).map(String::strip).toList());
        }
    }

    /** --quantize q8_0|q4_0. */
    static final class QuantizeConverter implements ITypeConverter<DType> {
        @Override
        public DType convert(String value) {
            try {
                return QuantizedCheckpoint.parseFormat(value);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }

    static int inRange(CommandSpec spec, String option, int value, int min, int max, String what) {
        return (int) Commands.inRange(spec, option, value, min, max, what);
    }

    static Qwen3Tokenizer tokenizer(String location) {
        Path path = ModelLocator.resolve(location);
        Qwen3Tokenizer tokenizer = Checkpoints.tokenizer(path);
        if (tokenizer == null) {
            throw new IllegalArgumentException(path.resolve("tokenizer.json") + ": file missing (this model ships no tokenizer; use token ids)");
        }
        return tokenizer;
    }

    @Command(name = "tokenize", mixinStandardHelpOptions = true, description = "Prints the token ids of a text as a JSON array.")
    static final class Tokenize implements Callable<Integer> {
        @ParentCommand
        Qwen3Cli cli;
        @Mixin
        ModelOption model;
        @Option(names = "--text", required = true, paramLabel = "TEXT", description = "The text to tokenize.")
        String text;

        @Override
        public Integer call() {
            cli.out.println(toJson(tokenizer(model.location).encode(text)));
            return 0;
        }
    }

    @Command(name = "render", mixinStandardHelpOptions = true,
            description = {"Prints a conversation rendered with the Qwen3 chat template, as the model sees it.",
                    "FILE holds a JSON list such as [{\"role\": \"user\", \"content\": \"Hi\"}] (roles: system, user, "
                            + "assistant, tool; an assistant turn may carry reasoning_content)."})
    static final class Render implements Callable<Integer> {
        @ParentCommand
        Qwen3Cli cli;
        @Spec
        CommandSpec spec;
        @Mixin
        ModelOption model;
        @Option(names = "--messages", required = true, paramLabel = "FILE",
                description = "JSON list of turns: role, content, and optionally reasoning_content and tool_calls.")
        Path file;
        @Option(names = "--tools", paramLabel = "FILE",
                description = "JSON list of function definitions, rendered into the system turn as the chat template does.")
        Path toolsFile;
        @Option(names = "--no-thinking", description = "Render for non-thinking mode (an empty think block).")
        boolean noThinking;

        @Override
        public Integer call() {
            List<ChatMessage> messages = readMessages(spec, file);
            List<JsonNode> tools = new ArrayList<>();
            if (toolsFile != null) {
                JsonNode t = readJsonList(spec, toolsFile, "--tools", "function definitions");
                for (int i = 0; i < t.size(); i++) {
                    if (!t.get(i).isObject()) {
                        throw new ParameterException(spec.commandLine(), "--tools " + toolsFile + ": [" + i
                                + "] is not an object (a function definition)");
                    }
                    tools.add(t.get(i));
                }
            }
            tokenizer(model.location); // validates the model location like the other commands
            boolean generationPrompt = messages.isEmpty() || !messages.getLast().role().equals("assistant");
            // as the engine renders it: a Thinking-2507 template opens the think block in the generation prompt
            boolean opensThinkBlock = ChatTemplate.opensThinkBlock(Checkpoints.chatTemplate(ModelLocator.resolve(model.location)));
            cli.out.print(ChatTemplate.render(messages, tools, generationPrompt, !noThinking, opensThinkBlock));
            return 0;
        }
    }

    /**
     * The text of an option's file ({@code what}: what it holds); a usage error "OPTION FILE: ..." (exit 2,
     * before any model loads) for a missing, unreadable or directory path.
     */
    static String readOptionFile(CommandSpec spec, Path file, String option, String what) {
        try {
            if (Files.isDirectory(file)) {
                throw new ParameterException(spec.commandLine(), option + " " + file + ": a directory, expected " + what);
            }
            return Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new ParameterException(spec.commandLine(), option + " " + file + ": no such file (" + what + ")");
        } catch (IOException e) {
            throw new ParameterException(spec.commandLine(), option + " " + file + ": cannot be read ("
                    + (e instanceof java.nio.file.AccessDeniedException ? "permission denied" : e.getMessage()) + ")");
        }
    }

    /** A JSON list from an option's file; a usage error as {@link #readOptionFile} also when it is no JSON list. */
    static JsonNode readJsonList(CommandSpec spec, Path file, String option, String what) {
        String text = readOptionFile(spec, file, option, "a JSON list of " + what);
        JsonNode list;
        try {
            list = JSON.readTree(text);
        } catch (IOException e) {
            throw new ParameterException(spec.commandLine(), option + " " + file + ": not valid JSON ("
                    + e.getMessage().lines().findFirst().orElse("") + ")");
        }
        if (list == null || !list.isArray()) {
            throw new ParameterException(spec.commandLine(), option + " " + file + ": expected a JSON list of " + what);
        }
        return list;
    }

    /** A --json-schema file: its text and the grammar compiled from it. */
    record JsonSchemaFile(String text, JsonSchemaGrammar grammar) {}

    /**
     * Reads and compiles a --json-schema file; a usage error as {@link #readOptionFile} also for a
     * schema that is no JSON or that the grammar does not support, so it is refused before any model loads.
     */
    static JsonSchemaFile readJsonSchema(CommandSpec spec, Path file) {
        String text = readOptionFile(spec, file, "--json-schema", "a JSON Schema");
        try {
            return new JsonSchemaFile(text, JsonSchemaGrammar.compile(text));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--json-schema " + file + ": " + e.getMessage());
        }
    }

    /** The chat turns of a --messages file; a usage error naming the file and the turn. */
    static List<ChatMessage> readMessages(CommandSpec spec, Path file) {
        JsonNode list = readJsonList(spec, file, "--messages", "chat turns");
        List<ChatMessage> messages = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            try {
                messages.add(ChatMessage.fromJson(list.get(i), file + ": [" + i + "]"));
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "--messages " + e.getMessage());
            }
        }
        return messages;
    }

    @Command(name = "logits", mixinStandardHelpOptions = true,
            description = "Prints, per position, the top logits and the log-sum-exp of a prompt's next-token distribution (JSON lines).")
    static final class Logits implements Callable<Integer> {
        @ParentCommand
        Qwen3Cli cli;
        @Spec
        CommandSpec spec;
        @Mixin
        ModelOption model;
        @Option(names = "--tokens", required = true, paramLabel = "IDS", converter = TokenIdsConverter.class,
                description = "Comma-separated token ids.")
        Ints ids;
        @Option(names = "--top", paramLabel = "K", defaultValue = "10", description = "Logits listed per position (default: ${DEFAULT-VALUE}).")
        int top;
        @Mixin
        ThreadsOption threads;

        @Override
        public Integer call() {
            inRange(spec, "--top", top, 1, Integer.MAX_VALUE, "a positive count");
            int[] ids = this.ids.values();
            Path dir = ModelLocator.resolve(model.location);
            try (Checkpoint checkpoint = Checkpoints.open(dir)) {
                int vocab = checkpoint.config().vocabSize();
                checkTokenIds(spec, "--tokens", ids, vocab); // before the weights load
                try (var parallel = new Parallel(threads.threads);
                     var loaded = Qwen3Model.load(checkpoint, parallel)) {
                    float[] logits = loaded.prefill(ids, loaded.newCache(ids.length), true, ForwardObserver.NONE);
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
                        line.put("logsumexp", Kernels.logSumExp(logits, off, vocab));
                        cli.out.println(line);
                    }
                }
            }
            return 0;
        }
    }

    @Command(name = "generate", mixinStandardHelpOptions = true,
            description = {"Answers one prompt (chat template applied) or continues raw token ids.",
                    "Sampling defaults are Qwen's recommendations for the mode (thinking: T 0.6, top-p 0.95, top-k 20; "
                            + "non-thinking: T 0.7, top-p 0.8, top-k 20), overridden by the model's generation_config.json."})
    static final class Generate implements Callable<Integer> {
        @ParentCommand
        Qwen3Cli cli;
        @Spec
        CommandSpec spec;
        @Mixin
        ModelOption model;
        @ArgGroup(exclusive = true, multiplicity = "1")
        Input input;
        @Option(names = "--no-thinking", description = "Answer without a think block.")
        boolean noThinking;
        @Option(names = "--thinking-budget", paramLabel = "N", defaultValue = "-1",
                description = "Thinking tokens before Qwen's early-stop text is appended: -1 unlimited (default), 0 none.")
        int thinkingBudget;
        @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "512",
                description = "Generated tokens, thinking plus answer (default: ${DEFAULT-VALUE}).")
        int maxTokens;
        @Option(names = "--temperature", paramLabel = "T", description = "0 (greedy) to 100; default: Qwen's recommendation.")
        Float temperature;
        @Option(names = "--seed", paramLabel = "S", description = "Sampling seed (default: random).")
        Long seed;
        @Mixin
        ThreadsOption threads;
        @Mixin
        QuantizeOption quantize;
        @Option(names = "--json", description = "Print one JSON object (answer, reasoning, counts, tokens/s).")
        boolean json;
        @Option(names = "--json-schema", paramLabel = "FILE",
                description = "A JSON Schema the answer must satisfy (decoding is constrained; the answer is JSON that validates).")
        Path jsonSchema;

        static final class Input {
            @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "One user turn (needs the model's tokenizer).")
            String prompt;
            @Option(names = "--tokens", required = true, paramLabel = "IDS", converter = TokenIdsConverter.class,
                    description = "Raw comma-separated token ids.")
            Ints tokens;
        }

        @Override
        public Integer call() {
            inRange(spec, "--thinking-budget", thinkingBudget, -1, Integer.MAX_VALUE, "-1 (unlimited), 0 (none) or a token count");
            inRange(spec, "--max-tokens", maxTokens, 1, Integer.MAX_VALUE, "a positive token count");
            if (temperature != null && !(temperature >= 0 && temperature <= MAX_TEMPERATURE)) {
                throw new ParameterException(spec.commandLine(), "--temperature expects a number from 0 (greedy) to "
                        + (int) MAX_TEMPERATURE + ", got " + temperature);
            }
            if (input.prompt != null) {
                requireTokenizer(spec, model.location, "it takes --tokens IDS, not --prompt");
            }
            var request = GenerationRequest.builder();
            if (input.prompt != null) {
                request.user(input.prompt);
            } else {
                request.promptTokens(input.tokens.values());
            }
            boolean thinking = !noThinking;
            request.enableThinking(thinking).thinkingBudget(thinkingBudget).maxTokens(maxTokens);
            if (jsonSchema != null) {
                request.jsonSchema(readJsonSchema(spec, jsonSchema).text());
            }
            if (input.tokens != null) {
                try (Checkpoint checkpoint = Checkpoints.open(ModelLocator.resolve(model.location))) { // the header only, no weights
                    checkTokenIds(spec, "--tokens", input.tokens.values(), checkpoint.config().vocabSize());
                }
            }
            long loadStart = System.nanoTime();
            var options = EngineOptions.defaults().withThreads(threads.threads).withQuantize(quantize.type);
            try (var engine = Qwen3Engine.open(model.location, options)) {
                double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
                var sampling = SamplingParams.recommended(thinking && thinkingBudget != 0,
                        engine.model().checkpoint().generationConfig(), seed != null ? seed : System.nanoTime());
                if (temperature != null) {
                    sampling = sampling.withTemperature(temperature);
                }
                long start = System.nanoTime();
                GenerationResult result = engine.generate(request.sampling(sampling).build());
                double seconds = (System.nanoTime() - start) / 1e9;
                int generated = result.outputTokens().length;
                if (json) {
                    ObjectNode line = JSON.createObjectNode();
                    line.put("answer", result.answer());
                    line.put("reasoning", result.reasoning());
                    line.put("finish_reason", result.finishReason().wireName());
                    line.put("prompt_tokens", result.promptTokens());
                    line.put("thinking_tokens", result.thinkingTokens());
                    line.put("answer_tokens", result.answerTokens());
                    line.put("thinking_budget", result.thinkingBudget());
                    line.put("budget_exhausted", result.budgetExhausted());
                    var tokens = line.putArray("output_tokens");
                    Arrays.stream(result.outputTokens()).forEach(tokens::add);
                    line.put("load_seconds", loadSeconds);
                    line.put("tokens_per_second", generated / seconds);
                    cli.out.println(line);
                } else {
                    if (!result.reasoning().isEmpty()) {
                        cli.err.println("<think>\n" + result.reasoning() + "\n</think>");
                    }
                    cli.out.println(engine.tokenizer() == null ? toJson(result.outputTokens()) : result.answer());
                    cli.err.printf("[%d prompt + %d generated tokens, %s, %.1f tok/s, load %.2f s]%n", result.promptTokens(),
                            generated, result.finishReason().wireName(), generated / seconds, loadSeconds);
                }
            }
            return 0;
        }
    }

    @Command(name = "classify", mixinStandardHelpOptions = true,
            description = {"Picks one of the labels for a text or conversation by scoring each label as the answer "
                    + "(summed token log-probabilities, softmax over the labels); no text is generated.",
                    "Prints one JSON line: label, label_probabilities (in the labels' order), counts and latency."})
    static final class Classify implements Callable<Integer> {
        @ParentCommand
        Qwen3Cli cli;
        @Spec
        CommandSpec spec;
        @Mixin
        ModelOption model;
        @Option(names = "--labels", required = true, paramLabel = "A,B,C", converter = LabelListConverter.class,
                description = "The labels, comma-separated (2 to 512, distinct; spaces around each are dropped).")
        LabelList labels;
        @ArgGroup(exclusive = true, multiplicity = "1")
        Input input;
        @Option(names = "--system", paramLabel = "S", description = "A system turn before the text (with --text).")
        String system;
        @Option(names = "--no-thinking", description = "Score the labels right after the prompt, without a think block.")
        boolean noThinking;
        @Option(names = "--thinking-budget", paramLabel = "N", defaultValue = "0",
                description = "Thinking tokens before the labels are scored: 0 none (default), -1 up to --max-tokens.")
        int thinkingBudget;
        @Option(names = "--max-tokens", paramLabel = "N", defaultValue = "512",
                description = "At most this many thinking tokens (default: ${DEFAULT-VALUE}).")
        int maxTokens;
        @Mixin
        ThreadsOption threads;
        @Mixin
        QuantizeOption quantize;
        @Option(names = "--json", description = "Accepted for symmetry with generate: the output is always one JSON line.")
        boolean json;

        static final class Input {
            @Option(names = "--text", required = true, paramLabel = "T", description = "The text to classify (one user turn).")
            String text;
            @Option(names = "--messages", required = true, paramLabel = "FILE",
                    description = "A JSON list of chat turns, as for render.")
            Path messages;
        }

        @Override
        public Integer call() {
            inRange(spec, "--thinking-budget", thinkingBudget, -1, Integer.MAX_VALUE, "-1 (up to --max-tokens), 0 (none) or a token count");
            inRange(spec, "--max-tokens", maxTokens, 1, Integer.MAX_VALUE, "a positive token count");
            List<ChatMessage> messages = new ArrayList<>();
            if (input.text != null) {
                if (system != null) {
                    messages.add(ChatMessage.system(system));
                }
                messages.add(ChatMessage.user(input.text));
            } else {
                if (system != null) {
                    throw new ParameterException(spec.commandLine(), "--system goes with --text; put the system turn into --messages");
                }
                messages.addAll(readMessages(spec, input.messages));
            }
            requireTokenizer(spec, model.location, "classify cannot score labels with it");
            boolean thinking = !noThinking && thinkingBudget != 0;
            GenerationRequest request;
            try {
                request = GenerationRequest.builder().messages(messages).labels(labels.values()).enableThinking(thinking)
                        .thinkingBudget(thinking ? thinkingBudget : 0).maxTokens(maxTokens).build();
            } catch (IllegalArgumentException e) {
                throw new ParameterException(spec.commandLine(), "--labels: " + e.getMessage());
            }
            var options = EngineOptions.defaults().withThreads(threads.threads).withQuantize(quantize.type);
            try (var engine = Qwen3Engine.open(model.location, options)) {
                long start = System.nanoTime();
                GenerationResult result = engine.generate(request.withSampling(
                        SamplingParams.recommended(thinking, engine.model().checkpoint().generationConfig(), 0)));
                ObjectNode line = JSON.createObjectNode();
                line.put("label", result.label());
                var probabilities = line.putObject("label_probabilities");
                result.labelProbabilities().forEach(probabilities::put);
                line.put("reasoning", result.reasoning());
                line.put("prompt_tokens", result.promptTokens());
                line.put("thinking_tokens", result.thinkingTokens());
                line.put("thinking_budget", result.thinkingBudget());
                line.put("latency_ms", (System.nanoTime() - start) / 1_000_000);
                cli.out.println(line);
            }
            return 0;
        }
    }

    /**
     * Text input needs a tokenizer: a model directory without tokenizer.json is a usage error before
     * anything is loaded (a .gguf file carries its tokenizer in its metadata, checked at load);
     * {@code consequence} says what that means for the command.
     */
    static void requireTokenizer(CommandSpec spec, String location, String consequence) {
        Path path = ModelLocator.resolve(location);
        // a directory without config.json is no model at all: loading it says that, which matters more
        if (Files.isDirectory(path) && Files.exists(path.resolve("config.json")) && !Files.exists(path.resolve("tokenizer.json"))) {
            throw new ParameterException(spec.commandLine(), path + " has no tokenizer.json, so " + consequence
                    + " (a model written by 'qwen3 synth' gets one with --tokenizer DIR)");
        }
    }

    @Command(name = "synth", mixinStandardHelpOptions = true,
            description = "Writes a Hugging Face checkpoint with the real shapes of a Qwen3 model and random BF16 weights, "
                    + "for benchmarks without a download.")
    static final class Synth implements Callable<Integer> {
        @ParentCommand
        Qwen3Cli cli;
        @Spec
        CommandSpec spec;
        @Option(names = "--shape", required = true, paramLabel = "SHAPE", completionCandidates = SyntheticCheckpoint.Shapes.class,
                description = "One of: ${COMPLETION-CANDIDATES}.")
        String shape;
        @Option(names = "--layers", paramLabel = "N", description = "Decoder layers (default: the model's).")
        Integer layers;
        @Option(names = "--dtype", paramLabel = "bf16", defaultValue = "bf16",
                description = "Weight type written: bf16 only (quantize at load time with --quantize).")
        String dtype;
        @Option(names = "--out", required = true, paramLabel = "DIR", description = "Directory to write: a new or empty one.")
        Path out;
        @Option(names = "--tokenizer", paramLabel = "DIR",
                description = "Copy tokenizer.json and tokenizer_config.json from DIR (e.g. a Qwen3 model directory), "
                        + "so the model takes --prompt; without it, token ids only.")
        Path tokenizer;
        @Mixin
        ThreadsOption threads;

        @Override
        public Integer call() throws IOException {
            if (!dtype.equalsIgnoreCase("bf16")) {
                throw new ParameterException(spec.commandLine(), "--dtype: synth writes bf16 weights (use --quantize q8_0|q4_0 "
                        + "at load time), got '" + dtype + "'");
            }
            var s = SyntheticCheckpoint.Shape.named(shape);
            if (s == null) {
                throw new ParameterException(spec.commandLine(), "--shape expects one of " + String.join(", ", new SyntheticCheckpoint.Shapes())
                        + ", got '" + shape + "'");
            }
            if (layers != null) {
                s = s.withLayers(inRange(spec, "--layers", layers, 1, 1024, "a layer count from 1 to 1024"));
            }
            if (tokenizer != null && !Files.isRegularFile(tokenizer.resolve("tokenizer.json"))) {
                throw new ParameterException(spec.commandLine(), "--tokenizer: " + tokenizer.resolve("tokenizer.json") + " does not exist");
            }
            requireNewOrEmpty(out);
            if (tokenizer == null) {
                cli.err.println("synth: no --tokenizer: " + out + " will take token ids (--tokens), not --prompt");
            }
            try {
                SyntheticCheckpoint.write(s, out, tokenizer, threads.threads, cli.err);
            } catch (IOException e) {
                throw new IOException("cannot write " + out + ": " + e.getMessage(), e);
            }
            return 0;
        }

        /**
         * Refuses an --out that exists and is not an empty directory: an engine may have its
         * model.safetensors mapped (rewritten in place, that engine crashes), and files left from
         * another model beside the new ones would mix two models.
         */
        private void requireNewOrEmpty(Path out) {
            if (!Files.exists(out, LinkOption.NOFOLLOW_LINKS)) {
                return;
            }
            String problem = "exists and is not an empty directory";
            if (Files.isDirectory(out)) {
                try (var entries = Files.list(out)) {
                    if (entries.findAny().isEmpty()) {
                        return;
                    }
                } catch (IOException e) {
                    problem = "cannot be listed (" + e.getMessage() + ")";
                }
            }
            throw new ParameterException(spec.commandLine(), "--out " + out + " " + problem
                    + ": choose a new or empty directory (synth does not overwrite a model)");
        }
    }

    private static String toJson(int[] ids) {
        var sb = new StringBuilder("[");
        for (int i = 0; i < ids.length; i++) {
            sb.append(i == 0 ? "" : ",").append(ids[i]);
        }
        return sb.append(']').toString();
    }
}
