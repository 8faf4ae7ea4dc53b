package io.flinkqwen3.testing;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Damaged copies of the fixture models, as a user could end up with them (an incomplete or wrong upload). */
public final class CorruptModels {
    private CorruptModels() {}

    /**
     * A copy of the dense fixture whose final norm is missing ('model.norm.weight' renamed in the
     * shard and the index): everything before it loads and is packed, then loading fails.
     */
    public static Path withoutFinalNorm(Path dir) throws Exception {
        Files.createDirectories(dir);
        try (var files = Files.list(Fixtures.DENSE)) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        rename(dir.resolve("model.safetensors.index.json"));
        rename(dir.resolve("model-00002-of-00002.safetensors"));
        return dir;
    }

    /** Renames the tensor in place (same length, so offsets and the header length stay valid). */
    private static void rename(Path file) throws Exception {
        byte[] bytes = Files.readAllBytes(file);
        byte[] from = "\"model.norm.weight\"".getBytes(StandardCharsets.US_ASCII);
        byte[] to = "\"model.norm.xeight\"".getBytes(StandardCharsets.US_ASCII);
        int at = indexOf(bytes, from);
        if (at < 0) {
            throw new IllegalStateException(file + " does not name model.norm.weight");
        }
        System.arraycopy(to, 0, bytes, at, to.length);
        file.toFile().setWritable(true);
        Files.write(file, bytes);
    }

    private static int indexOf(byte[] bytes, byte[] pattern) {
        outer:
        for (int i = 0; i + pattern.length <= bytes.length; i++) {
            for (int j = 0; j < pattern.length; j++) {
                if (bytes[i + j] != pattern[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
