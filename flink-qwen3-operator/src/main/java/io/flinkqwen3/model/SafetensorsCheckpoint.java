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
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
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
        JsonNode weightMap = ModelConfig.readJson(index, "safetensors index").path("weight_map");
        if (!weightMap.isObject() || weightMap.isEmpty()) {
            throw new ModelFormatException(index + ": field 'weight_map' missing or empty");
        }
        Set<Path> files = new TreeSet<>();
        for (var e : weightMap.properties()) {
            files.add(require(insideModelDirectory(index, e.getKey(), e.getValue())));
        }
        return files;
    }

    /**
     * The shard that the index names for a tensor, which must be a relative path that stays inside
     * the model directory: an index naming {@code ../../etc/passwd} or {@code /dev/zero} is refused
     * before anything is opened. (Symbolic links inside the directory are followed: the Hugging Face
     * cache links snapshot files to its blobs.)
     */
    private Path insideModelDirectory(Path index, String tensor, JsonNode value) {
        String name = value.isTextual() ? value.asText() : null;
        Path resolved = null;
        if (name != null && !name.isEmpty() && name.indexOf('\0') < 0) {
            try {
                Path relative = Path.of(name);
                Path base = dir.toAbsolutePath().normalize();
                Path candidate = base.resolve(relative).normalize();
                boolean plain = !relative.isAbsolute() && relative.getRoot() == null;
                for (Path part : relative) {
                    plain &= !part.toString().equals("..");
                }
                if (plain && candidate.startsWith(base) && !candidate.equals(base)) {
                    resolved = candidate;
                }
            } catch (java.nio.file.InvalidPathException e) {
                // refused below
            }
        }
        if (resolved == null) {
            throw new ModelFormatException(index + ": weight_map['" + tensor + "'] is " + value
                    + ", expected the name of a file inside the model directory " + dir);
        }
        return resolved;
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
            List<Extent> extents = new ArrayList<>();
            for (var e : header.properties()) {
                if (!e.getKey().equals("__metadata__")) {
                    extents.add(parseTensor(file, e.getKey(), e.getValue()));
                }
            }
            // As the safetensors library requires: the tensors tile the data section, in order,
            // without gaps or overlaps, and the file ends where the last tensor ends.
            extents.sort(Comparator.comparingLong(Extent::begin).thenComparingLong(Extent::end));
            long expected = 0;
            Extent previous = null;
            for (Extent x : extents) {
                if (x.begin() < expected) {
                    throw new ModelFormatException(file + ": tensors '" + previous.name() + "' (data_offsets [" + previous.begin()
                            + ", " + previous.end() + ")) and '" + x.name() + "' (data_offsets [" + x.begin() + ", " + x.end()
                            + ")) overlap");
                }
                if (x.begin() > expected) {
                    throw new ModelFormatException(file + ": tensor '" + x.name() + "' starts at data offset " + x.begin()
                            + ", expected " + expected + " (no gaps between tensors)");
                }
                expected = x.end();
                previous = x;
            }
            if (dataStart + expected > size) {
                throw new ModelFormatException(file + ": truncated: tensor '" + previous.name() + "' ends at byte "
                        + (dataStart + expected) + " but the file has " + size + " bytes");
            }
            if (dataStart + expected < size) {
                throw new ModelFormatException(file + ": " + size + " bytes, but the header describes " + (dataStart + expected)
                        + " (the file was changed or is not a safetensors file)");
            }
            for (Extent x : extents) {
                Tensor earlier = tensors.get(x.name());
                if (earlier != null) {
                    throw new ModelFormatException(file + ": tensor '" + x.name() + "' is also in " + earlier.file());
                }
                tensors.put(x.name(), new Tensor(x.name(), file.getFileName().toString(), x.type(), x.shape(),
                        all.asSlice(dataStart + x.begin(), x.end() - x.begin())));
            }
        } catch (IOException e) {
            throw new ModelFormatException(file + ": cannot map (" + e.getMessage() + ")", e);
        }
    }

    private record Extent(String name, DType type, long[] shape, long begin, long end) {}

    private static Extent parseTensor(Path file, String name, JsonNode t) {
        if (!t.isObject()) {
            throw new ModelFormatException(file + ": tensor '" + name + "' is " + t + ", expected an object");
        }
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
            JsonNode d = shapeNode.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.asLong() < 0) {
                throw new ModelFormatException(file + ": tensor '" + name + "' has shape " + shapeNode
                        + ", expected non-negative integers");
            }
            shape[i] = d.asLong();
            if (shape[i] != 0 && elements > Long.MAX_VALUE / type.blockBytes() / shape[i]) {
                throw new ModelFormatException(file + ": tensor '" + name + "' has shape " + shapeNode + ", whose size overflows");
            }
            elements *= shape[i];
        }
        for (JsonNode o : offsets) {
            if (!o.isIntegralNumber() || !o.canConvertToLong() || o.asLong() < 0) {
                throw new ModelFormatException(file + ": tensor '" + name + "' has data_offsets " + offsets
                        + ", expected two non-negative integers");
            }
        }
        long begin = offsets.get(0).asLong(), end = offsets.get(1).asLong();
        if (end < begin || end - begin != type.byteSize(elements)) {
            throw new ModelFormatException(file + ": tensor '" + name + "' data_offsets [" + begin + ", " + end
                    + ") hold " + (end - begin) + " bytes, its shape needs " + type.byteSize(elements));
        }
        return new Extent(name, type, shape, begin, end);
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
