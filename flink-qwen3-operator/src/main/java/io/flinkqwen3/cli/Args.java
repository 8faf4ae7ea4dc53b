package io.flinkqwen3.cli;

import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** --name value and --flag arguments of one subcommand, with errors that say which option is wrong. */
final class Args {
    private final Map<String, String> values = new HashMap<>();
    private final Set<String> flags = new HashSet<>();

    Args(List<String> argv, Set<String> valueOptions, Set<String> flagOptions) {
        for (int i = 0; i < argv.size(); i++) {
            String a = argv.get(i);
            if (flagOptions.contains(a)) {
                flags.add(a);
            } else if (valueOptions.contains(a)) {
                if (i + 1 >= argv.size()) {
                    throw new UsageException(a + " needs a value");
                }
                values.put(a, argv.get(++i));
            } else {
                throw new UsageException("unknown option '" + a + "'");
            }
        }
    }

    String required(String name) {
        String v = values.get(name);
        if (v == null) {
            throw new UsageException(name + " is required");
        }
        return v;
    }

    String get(String name) {
        return values.get(name);
    }

    boolean has(String name) {
        return values.containsKey(name) || flags.contains(name);
    }

    int intValue(String name, int fallback) {
        String v = values.get(name);
        try {
            return v == null ? fallback : Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(name + " expects an integer, got '" + v + "'");
        }
    }

    /** --threads: the kernel pool size, available processors by default; counts that make no sense are a usage error. */
    int threads() {
        int threads = intValue("--threads", Runtime.getRuntime().availableProcessors());
        try {
            io.flinkqwen3.tensor.Parallel.checkThreads("--threads", threads);
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        return threads;
    }

    float floatValue(String name, float fallback) {
        String v = values.get(name);
        try {
            return v == null ? fallback : Float.parseFloat(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(name + " expects a number, got '" + v + "'");
        }
    }

    static int[] parseIds(String csv) {
        String[] parts = csv.split(",");
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new UsageException("token ids must be comma-separated integers, got '" + parts[i] + "'");
            }
        }
        return ids;
    }

    static final class UsageException extends RuntimeException {
        UsageException(String message) {
            super(message);
        }
    }
}
