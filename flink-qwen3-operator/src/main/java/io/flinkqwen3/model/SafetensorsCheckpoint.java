package io.flinkqwen3.model;

import com.fasterxml.jackson.databind.JsonNode;
import io.flinkqwen3.tensor.DType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A Hugging Face model directory: config.json, generation_config.json and one
 * {@code model.safetensors} or shards listed by {@code model.safetensors.index.json}. Each file is
 * memory-mapped once; tensors are slices of the mapping, never copied to the heap.
 */
public final class SafetensorsCheckpoint implements Checkpoint {
    private static final long MAX_HEADER_BYTES = 100L << 20;

    private final Path dir;
    private final ModelConfig config;
    private final GenerationConfig generationConfig;
    private final Arena arena = Arena.ofShared();
    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private long mappedBytes;

    private SafetensorsCheckpoint(Path dir) {
        this.dir = dir;
        this.config = ModelConfig.read(require(dir.resolve("config.json")));
        this.generationConfig = GenerationConfig.read(dir.resolve("generation_config.json"));
    }

    public static SafetensorsCheckpoint open(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new ModelFormatException(dir + ": not a model directory (expected config.json and *.safetensors)");
        }
        var ckpt = new SafetensorsCheckpoint(dir);
        try {
            for (Path file : ckpt.shardFiles()) {
                ckpt.map(file);
            }
        } catch (RuntimeException e) {
            ckpt.close();
            throw e;
        }
        return ckpt;
    }

    private static Path require(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new ModelFormatException(file + ": file missing");
        }
        return file;
    }

    private Set<Path> shardFiles() {
        Path index = dir.resolve("model.safetensors.index.json");
        if (!Files.exists(index)) {
            return Set.of(require(dir.resolve("model.safetensors")));
        }
        JsonNode weightMap;
        try {
            weightMap = ModelConfig.JSON.readTree(Files.readString(index)).path("weight_map");
        } catch (IOException e) {
            throw new ModelFormatException(index + ": invalid JSON (" + e.getMessage() + ")", e);
        }
        if (!weightMap.isObject() || weightMap.isEmpty()) {
            throw new ModelFormatException(index + ": field 'weight_map' missing or empty");
        }
        Set<Path> files = new TreeSet<>();
        weightMap.forEach(f -> files.add(require(dir.resolve(f.asText()))));
        return files;
    }

    private void map(Path file) {
        try (var channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            if (size < 8) {
                throw new ModelFormatException(file + ": truncated (" + size + " bytes, a safetensors file starts with an 8-byte header length)");
            }
            MemorySegment all = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            mappedBytes += size;
            long headerLen = all.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLen <= 0 || headerLen > MAX_HEADER_BYTES || 8 + headerLen > size) {
                throw new ModelFormatException(file + ": header length " + headerLen + " does not fit a file of " + size + " bytes");
            }
            byte[] headerBytes = all.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
            JsonNode header;
            try {
                header = ModelConfig.JSON.readTree(headerBytes);
            } catch (IOException e) {
                throw new ModelFormatException(file + ": invalid header JSON (" + e.getMessage() + ")", e);
            }
            if (header == null || !header.isObject()) {
                throw new ModelFormatException(file + ": invalid header JSON (expected an object of tensors)");
            }
            long dataStart = 8 + headerLen;
            var fields = header.properties().iterator();
            while (fields.hasNext()) {
                var e = fields.next();
                if (!e.getKey().equals("__metadata__")) {
                    tensors.put(e.getKey(), parseTensor(file, e.getKey(), e.getValue(), all, dataStart, size));
                }
            }
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot map (" + e.getMessage() + ")", e);
        }
    }

    private static Tensor parseTensor(Path file, String name, JsonNode t, MemorySegment all, long dataStart, long size) {
        String dtypeName = t.path("dtype").asText();
        DType type = DType.fromSafetensors(dtypeName);
        if (type == null) {
            throw new ModelFormatException(file + ": tensor '" + name + "' has dtype " + dtypeName
                    + ", supported are F32, F16 and BF16");
        }
        JsonNode shapeNode = t.path("shape"), offsets = t.path("data_offsets");
        if (!shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
            throw new ModelFormatException(file + ": tensor '" + name + "' needs 'shape' and two 'data_offsets'");
        }
        long[] shape = new long[shapeNode.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            shape[i] = shapeNode.get(i).asLong();
            elements *= shape[i];
        }
        long begin = offsets.get(0).asLong(), end = offsets.get(1).asLong();
        if (end - begin != type.byteSize(elements)) {
            throw new ModelFormatException(file + ": tensor '" + name + "' data_offsets [" + begin + ", " + end
                    + ") hold " + (end - begin) + " bytes, its shape needs " + type.byteSize(elements));
        }
        if (begin < 0 || dataStart + end > size) {
            throw new ModelFormatException(file + ": truncated: tensor '" + name + "' ends at byte " + (dataStart + end)
                    + " but the file has " + size + " bytes");
        }
        return new Tensor(name, file.getFileName().toString(), type, shape, all.asSlice(dataStart + begin, end - begin));
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public GenerationConfig generationConfig() {
        return generationConfig;
    }

    @Override
    public Path location() {
        return dir;
    }

    @Override
    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new ModelFormatException(dir + ": tensor '" + name + "' missing from the checkpoint ("
                    + tensors.size() + " tensors present)");
        }
        return t;
    }

    @Override
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    @Override
    public Set<String> tensorNames() {
        return Collections.unmodifiableSet(tensors.keySet());
    }

    @Override
    public long mappedBytes() {
        return mappedBytes;
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
