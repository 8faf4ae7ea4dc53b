package io.flinkqwen3.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/** The shared fixtures (../shared/fixtures) and their transformers reference outputs. */
public final class Fixtures {
    /** ../shared beside the repository: found by walking up from the working directory. */
    public static final Path SHARED = findShared();
    public static final Path FIXTURES = SHARED.resolve("fixtures");
    public static final Path DENSE = FIXTURES.resolve("qwen3-dense-tiny");
    public static final Path MOE = FIXTURES.resolve("qwen3-moe-tiny");
    public static final Path YARN = FIXTURES.resolve("qwen3-dense-yarn");
    public static final Path GGUF = SHARED.resolve("fixtures-gguf");

    /** One kernel pool for the model tests (daemon threads that park when idle; never closed). */
    public static final io.flinkqwen3.tensor.Parallel PARALLEL = new io.flinkqwen3.tensor.Parallel(2);

    private Fixtures() {}

    private static Path findShared() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolveSibling("shared");
            if (Files.isDirectory(candidate.resolve("fixtures"))) {
                return candidate;
            }
        }
        throw new IllegalStateException("../shared/fixtures not found above " + Path.of("").toAbsolutePath());
    }

    /** A reference.safetensors file: F32 and I32 tensors read fully (they are small). */
    public static final class Reference {
        private final Map<String, float[]> floats = new HashMap<>();
        private final Map<String, int[]> ints = new HashMap<>();
        private final Map<String, long[]> shapes = new HashMap<>();

        public Reference(Path file) {
            try {
                byte[] all = Files.readAllBytes(file);
                ByteBuffer buf = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
                long headerLen = buf.getLong(0);
                JsonNode header = new ObjectMapper().readTree(new String(all, 8, (int) headerLen));
                int base = 8 + (int) headerLen;
                header.properties().forEach(e -> {
                    if (e.getKey().equals("__metadata__")) {
                        return;
                    }
                    JsonNode t = e.getValue();
                    int begin = base + t.get("data_offsets").get(0).asInt();
                    int count = (t.get("data_offsets").get(1).asInt() - t.get("data_offsets").get(0).asInt()) / 4;
                    long[] shape = new long[t.get("shape").size()];
                    for (int i = 0; i < shape.length; i++) {
                        shape[i] = t.get("shape").get(i).asLong();
                    }
                    shapes.put(e.getKey(), shape);
                    switch (t.get("dtype").asText()) {
                        case "F32" -> {
                            float[] v = new float[count];
                            buf.slice(begin, count * 4).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(v);
                            floats.put(e.getKey(), v);
                        }
                        case "I32" -> {
                            int[] v = new int[count];
                            buf.slice(begin, count * 4).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(v);
                            ints.put(e.getKey(), v);
                        }
                        case "I64" -> {
                            int[] v = new int[count / 2];
                            var lb = buf.slice(begin, count * 4).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer();
                            for (int i = 0; i < v.length; i++) {
                                v[i] = (int) lb.get(i);
                            }
                            ints.put(e.getKey(), v);
                        }
                        default -> throw new IllegalStateException("unexpected dtype in " + file + ": " + t);
                    }
                });
            } catch (IOException e) {
                throw new IllegalStateException("cannot read " + file, e);
            }
        }

        public float[] floats(String name) {
            float[] v = floats.get(name);
            if (v == null) {
                throw new IllegalArgumentException("reference has no float tensor " + name);
            }
            return v;
        }

        public int[] ints(String name) {
            int[] v = ints.get(name);
            if (v == null) {
                throw new IllegalArgumentException("reference has no int tensor " + name);
            }
            return v;
        }

        public boolean has(String name) {
            return floats.containsKey(name) || ints.containsKey(name);
        }

        public long[] shape(String name) {
            return shapes.get(name);
        }

        public int prompts() {
            int n = 0;
            while (has("p" + n + ".ids")) {
                n++;
            }
            return n;
        }
    }
}
