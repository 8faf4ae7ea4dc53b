package io.flinkqwen3.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.flinkqwen3.model.Checkpoints;
import io.flinkqwen3.testing.Fixtures;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each file synth writes is complete under its final name or not there at all. */
class SyntheticCheckpointTest {
    private static List<String> names(Path dir) throws IOException {
        try (var files = Files.list(dir)) {
            return files.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aWriteThatFailsLeavesNothingUnderTheFinalName(@TempDir Path dir) throws Exception {
        Path target = dir.resolve("config.json");
        IOException e = assertThrows(IOException.class, () -> SyntheticCheckpoint.writeAtomically(target, tmp -> {
            Files.writeString(tmp, "{\"hidden_", StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            throw new IOException("No space left on device");
        }));
        assertEquals("No space left on device", e.getMessage());
        assertEquals(List.of(), names(dir), "neither the final name nor the temporary file");
        SyntheticCheckpoint.writeAtomically(target, tmp -> Files.writeString(tmp, "{}", StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE));
        assertEquals("{}", Files.readString(target));
        assertEquals(List.of("config.json"), names(dir));
    }

    @Test
    void aSmallShapeWritesAModelWithNoFileLeftOver(@TempDir Path dir) throws Exception {
        var shape = new SyntheticCheckpoint.Shape(8, 16, 1, 2, 1, 4, 0, 0, 0, true); // 2.4 MB, the vocabulary's embedding rows
        SyntheticCheckpoint.write(shape, dir, Fixtures.DENSE, 1, new PrintStream(java.io.OutputStream.nullOutputStream()));
        assertEquals(List.of("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"),
                names(dir));
        try (var checkpoint = Checkpoints.open(dir)) {
            assertEquals(SyntheticCheckpoint.VOCAB, checkpoint.config().vocabSize());
            assertEquals(8, checkpoint.config().hiddenSize());
        }
    }
}
