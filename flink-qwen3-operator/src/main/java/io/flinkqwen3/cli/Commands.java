package io.flinkqwen3.cli;

import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;

/**
 * How the qwen3 command and the example launchers behave on the command line: results and
 * {@code --help} on {@code out} (exit 0); a usage error on {@code err} with the message naming the
 * option, the near misses of an unknown one and the command's usage (exit 2); a failure of the
 * work on {@code err} as one line, the command and the message (exit 1).
 */
public final class Commands {
    private Commands() {}

    /** A picocli command line for {@code command} that behaves as described above. */
    public static CommandLine commandLine(Object command, PrintStream out, PrintStream err) {
        return withVersionOnSubcommands(new CommandLine(command))
                .setCaseInsensitiveEnumValuesAllowed(true)
                .setOut(new PrintWriter(new OutputStreamWriter(out, StandardCharsets.UTF_8), true))
                .setErr(new PrintWriter(new OutputStreamWriter(err, StandardCharsets.UTF_8), true))
                .setParameterExceptionHandler(Commands::usageError)
                .setExecutionExceptionHandler((e, cli, parsed) -> {
                    cli.getErr().println(cli.getCommandSpec().qualifiedName() + ": " + (e.getMessage() != null ? e.getMessage() : e));
                    cli.getErr().flush();
                    return 1;
                });
    }

    /** Gives every subcommand without a version of its own the version of its parent (-V then prints it, not an empty line). */
    private static CommandLine withVersionOnSubcommands(CommandLine parent) {
        for (CommandLine sub : parent.getSubcommands().values()) {
            CommandSpec spec = sub.getCommandSpec();
            if (spec.version().length == 0 && spec.versionProvider() == null) {
                spec.versionProvider(parent.getCommandSpec().versionProvider());
                spec.version(parent.getCommandSpec().version());
            }
            withVersionOnSubcommands(sub);
        }
        return parent;
    }

    /** Runs {@code argv} and returns the exit code, with both streams flushed. */
    public static int execute(Object command, PrintStream out, PrintStream err, String... argv) {
        try {
            return commandLine(command, out, err).execute(argv);
        } finally {
            out.flush();
            err.flush();
        }
    }

    /** {@code value} when {@code min <= value <= max}; otherwise a usage error "OPTION expects WHAT, got VALUE". */
    public static long inRange(CommandSpec spec, String option, long value, long min, long max, String what) {
        if (value < min || value > max) {
            throw new ParameterException(spec.commandLine(), option + " expects " + what + ", got " + value);
        }
        return value;
    }

    /** As {@link #inRange(CommandSpec, String, long, long, long, String)} for a fraction (NaN is out of every range). */
    public static double inRange(CommandSpec spec, String option, double value, double min, double max, String what) {
        if (!(value >= min && value <= max)) {
            throw new ParameterException(spec.commandLine(), option + " expects " + what + ", got " + value);
        }
        return value;
    }

    /** The version from the jar's manifest ("development build" when run from compiled classes). */
    public static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Commands.class.getPackage().getImplementationVersion();
            return new String[] {"flink-qwen3 " + (v == null ? "development build" : v)};
        }
    }

    static int usageError(ParameterException e, String[] args) {
        CommandLine command = e.getCommandLine();
        PrintWriter err = command.getErr();
        err.println(command.getCommandSpec().qualifiedName() + ": " + e.getMessage());
        CommandLine.UnmatchedArgumentException.printSuggestions(e, err);
        err.println();
        command.usage(err, CommandLine.Help.Ansi.OFF);
        err.flush();
        return command.getCommandSpec().exitCodeOnInvalidInput();
    }
}
