package io.flinkqwen3.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.flinkqwen3.cli.Qwen3Cli;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.ToolProvider;
import org.apache.commons.text.StringTokenizer;
import org.apache.commons.text.matcher.StringMatcherFactory;
import org.apache.flink.api.common.JobExecutionResult;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.streaming.api.graph.StreamNode;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * Every code block of README.md works as written: the Java job compiles and plans, the SQL runs on
 * a local cluster (the model swapped for the tiny fixture), and every qwen3 / examples/bin command
 * line parses against its command (tokenize runs and prints what its comment says).
 */
class ReadmeTest {
    static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
    static final Path FIXTURE = ROOT.resolve("../shared/fixtures/qwen3-moe-tiny").normalize();
    private static final Pattern BLOCK = Pattern.compile("```(\\w+)\\n(.*?)```", Pattern.DOTALL);

    record Block(String language, String code) {}

    static List<Block> blocks(String language) throws Exception {
        List<Block> blocks = new ArrayList<>();
        Matcher m = BLOCK.matcher(Files.readString(ROOT.resolve("README.md")));
        while (m.find()) {
            if (m.group(1).equals(language)) {
                blocks.add(new Block(m.group(1), m.group(2)));
            }
        }
        assertFalse(blocks.isEmpty(), "README.md has no " + language + " block");
        return blocks;
    }

    /** An environment that builds the job graph (which checks uids and options) instead of running it. */
    static final class PlanOnly extends StreamExecutionEnvironment {
        static StreamGraph planned;

        static void setAsContext() {
            initializeContextEnvironment(configuration -> new PlanOnly());
        }

        static void unset() {
            resetContextEnvironment();
        }

        @Override
        public JobExecutionResult execute(StreamGraph graph) {
            graph.getJobGraph();
            planned = graph;
            return null;
        }
    }

    @Test
    void javaBlocksCompileAndPlanTheirJob(@TempDir Path dir) throws Exception {
        for (Block block : blocks("java")) {
            Matcher name = Pattern.compile("public class (\\w+)").matcher(block.code());
            assertTrue(name.find(), "a java block is a whole class with a main method:\n" + block.code());
            Path source = dir.resolve(name.group(1) + ".java");
            Files.writeString(source, block.code());
            var errors = new ByteArrayOutputStream();
            int code = ToolProvider.getSystemJavaCompiler().run(null, errors, errors, "-d", dir.toString(),
                    "-classpath", System.getProperty("java.class.path"), source.toString());
            assertEquals(0, code, "README's " + name.group(1) + " does not compile:\n" + errors);
            PlanOnly.setAsContext();
            try (var loader = new URLClassLoader(new java.net.URL[] {dir.toUri().toURL()}, getClass().getClassLoader())) {
                PlanOnly.planned = null;
                loader.loadClass(name.group(1)).getMethod("main", String[].class).invoke(null, (Object) new String[0]);
                assertNotNull(PlanOnly.planned, name.group(1) + ".main did not execute a job");
                List<String> operators = PlanOnly.planned.getStreamNodes().stream().map(StreamNode::getOperatorName).toList();
                assertTrue(operators.contains("Qwen3 inference"), operators.toString());
            } finally {
                PlanOnly.unset();
            }
        }
    }

    @Test
    void sqlBlocksRunOnALocalCluster() throws Exception {
        for (Block block : blocks("sql")) {
            var env = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
            env.getConfig().set("parallelism.default", "1");
            List<Row> rows = new ArrayList<>();
            for (String statement : block.code().split(";\\s*\\n")) {
                // the model named in the README is swapped for the tiny fixture
                String sql = statement.replaceAll("--[^\\n]*", "").strip().replace("'Qwen/Qwen3-0.6B'", "'" + FIXTURE + "'");
                if (sql.isEmpty()) {
                    continue;
                }
                if (sql.regionMatches(true, 0, "SELECT", 0, 6)) {
                    try (var it = env.executeSql(sql).collect()) {
                        it.forEachRemaining(rows::add);
                    }
                } else {
                    env.executeSql(sql);
                }
            }
            assertFalse(rows.isEmpty(), "the README's query returned nothing");
            for (Row row : rows) {
                assertFalse(String.valueOf(row.getField(row.getArity() - 1)).startsWith("error"), row.toString());
            }
        }
    }

    /** The command lines of the bash blocks, continuation lines joined, variables of the block substituted. */
    static List<List<String>> commandLines() throws Exception {
        List<List<String>> lines = new ArrayList<>();
        for (Block block : blocks("bash")) {
            Map<String, String> vars = new java.util.HashMap<>();
            for (String line : block.code().replace("\\\n", " ").split("\n")) {
                var tokenizer = new StringTokenizer(line, ' ', '"');
                tokenizer.setQuoteMatcher(StringMatcherFactory.INSTANCE.quoteMatcher());
                tokenizer.setIgnoreEmptyTokens(true);
                List<String> words = new ArrayList<>();
                for (String w : tokenizer.getTokenList()) {
                    if (w.startsWith("#")) {
                        break;
                    }
                    words.add(w.startsWith("$") && vars.containsKey(w.substring(1)) ? vars.get(w.substring(1)) : w);
                }
                if (words.size() == 1 && words.get(0).matches("\\w+=.*")) {
                    vars.put(words.get(0).substring(0, words.get(0).indexOf('=')), words.get(0).substring(words.get(0).indexOf('=') + 1));
                } else if (!words.isEmpty()) {
                    words.add(0, line.contains("#") ? line.substring(line.indexOf('#') + 1).strip() : "");
                    lines.add(words);
                }
            }
        }
        return lines;
    }

    @Test
    void commandLinesOfTheLaunchersParse() throws Exception {
        int checked = 0;
        for (List<String> line : commandLines()) {
            String comment = line.get(0), program = line.get(1);
            String[] args = line.subList(2, line.size()).toArray(String[]::new);
            Object command = switch (program) {
                case "flink-qwen3-operator/bin/qwen3" -> null;
                case "examples/bin/quickstart" -> new Quickstart(System.out);
                case "examples/bin/kafka-job" -> new KafkaInferenceJob();
                case "examples/bin/throughput" -> new ThroughputBenchmark();
                case "examples/bin/classify" -> new ClassifyExample(System.out);
                case "examples/bin/enrich" -> new EnrichExample(System.out);
                case "examples/bin/sql" -> new SqlExample(System.out);
                case "examples/bin/sla-bench" -> new SlaBenchmark(System.out);
                default -> "not ours";
            };
            if ("not ours".equals(command)) {
                continue;
            }
            checked++;
            String shown = program + " " + String.join(" ", args);
            try {
                if (command == null) {
                    Qwen3Cli.parse(args);
                } else {
                    new CommandLine(command).setCaseInsensitiveEnumValuesAllowed(true).parseArgs(args);
                }
            } catch (CommandLine.ParameterException e) {
                throw new AssertionError("README: " + shown + ": " + e.getMessage(), e);
            }
            if (command == null && args[0].equals("tokenize") && comment.startsWith("[")) {
                var out = new ByteArrayOutputStream();
                String[] inRepo = args.clone();
                for (int i = 0; i < inRepo.length; i++) {
                    inRepo[i] = inRepo[i].startsWith("../") ? ROOT.resolve(inRepo[i]).normalize().toString() : inRepo[i];
                }
                assertEquals(0, Qwen3Cli.run(new PrintStream(out, true, StandardCharsets.UTF_8), System.err, inRepo), shown);
                assertEquals(comment, out.toString(StandardCharsets.UTF_8).strip(), "README: " + shown);
            }
        }
        assertTrue(checked >= 8, "README command lines checked: " + checked);
    }
}
