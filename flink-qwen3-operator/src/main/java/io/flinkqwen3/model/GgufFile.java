package io.flinkqwen3.model;

import io.flinkqwen3.tensor.DType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file (llama.cpp's format, versions 2 and 3): metadata key/values and tensor infos parsed
 * from the header, tensor data memory-mapped. Dimensions are kept in ggml order (fastest first).
 */
public final class GgufFile implements AutoCloseable {
    static final int MAGIC = 0x46554747;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A tensor: ggml dims (fastest first), type and its bytes. */
    public record TensorInfo(String name, long[] dims, DType type, MemorySegment data) {}

    private final Path path;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment file;
    private final Map<String, Object> metadata = new LinkedHashMap<>();
    private final Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    private long position;

    private GgufFile(Path path) throws IOException {
        this.path = path;
        try (var channel = FileChannel.open(path, StandardOpenOption.READ)) {
            file = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
        }
    }

    public static GgufFile open(Path path) {
        GgufFile gguf;
        try {
            gguf = new GgufFile(path);
        } catch (IOException e) {
            throw new ModelFormatException(path + ": cannot map (" + e.getMessage() + ")", e);
        }
        try {
            gguf.parse();
            return gguf;
        } catch (IndexOutOfBoundsException e) {
            gguf.close();
            throw new ModelFormatException(path + ": truncated GGUF header (" + gguf.file.byteSize() + " bytes)", e);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    private void parse() {
        int magic = file.get(U32, 0);
        if (magic != MAGIC) {
            throw new ModelFormatException(path + ": not a GGUF file (magic 0x" + Integer.toHexString(magic) + ", expected 0x46554747 'GGUF')");
        }
        int version = file.get(U32, 4);
        if (version != 2 && version != 3) {
            throw new ModelFormatException(path + ": GGUF version " + version + " is not supported (2 or 3)");
        }
        long tensorCount = file.get(U64, 8), kvCount = file.get(U64, 16);
        position = 24;
        for (long i = 0; i < kvCount; i++) {
            String key = string();
            metadata.put(key, value(file.get(U32, advance(4))));
        }
        record Pending(String name, long[] dims, int type, long offset) {}
        List<Pending> infos = new ArrayList<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = string();
            long[] dims = new long[file.get(U32, advance(4))];
            for (int d = 0; d < dims.length; d++) {
                dims[d] = file.get(U64, advance(8));
            }
            infos.add(new Pending(name, dims, file.get(U32, advance(4)), file.get(U64, advance(8))));
        }
        long alignment = metadata.get("general.alignment") instanceof Number n ? n.longValue() : 32;
        long dataStart = (position + alignment - 1) / alignment * alignment;
        for (Pending p : infos) {
            DType type = DType.fromGgml(p.type());
            if (type == null) {
                throw new ModelFormatException(path + ": tensor '" + p.name() + "' has ggml type " + p.type()
                        + ", supported are F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K");
            }
            long elements = 1;
            for (long d : p.dims()) {
                elements *= d;
            }
            long bytes = type.byteSize(elements);
            long begin = dataStart + p.offset();
            if (begin + bytes > file.byteSize()) {
                throw new ModelFormatException(path + ": truncated: tensor '" + p.name() + "' ends at byte " + (begin + bytes)
                        + " but the file has " + file.byteSize() + " bytes");
            }
            tensors.put(p.name(), new TensorInfo(p.name(), p.dims(), type, file.asSlice(begin, bytes)));
        }
    }

    private long advance(long bytes) {
        long at = position;
        position += bytes;
        return at;
    }

    private String string() {
        long length = file.get(U64, advance(8));
        byte[] bytes = file.asSlice(advance(length), length).toArray(ValueLayout.JAVA_BYTE);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private Object value(int type) {
        return switch (type) {
            case 0 -> file.get(ValueLayout.JAVA_BYTE, advance(1)) & 0xFF;
            case 1 -> (int) file.get(ValueLayout.JAVA_BYTE, advance(1));
            case 2 -> file.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), advance(2)) & 0xFFFF;
            case 3 -> (int) file.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), advance(2));
            case 4 -> Integer.toUnsignedLong(file.get(U32, advance(4)));
            case 5 -> file.get(U32, advance(4));
            case 6 -> file.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), advance(4));
            case 7 -> file.get(ValueLayout.JAVA_BYTE, advance(1)) != 0;
            case 8 -> string();
            case 9 -> {
                int elementType = file.get(U32, advance(4));
                long n = file.get(U64, advance(8));
                List<Object> list = new ArrayList<>((int) Math.min(n, 1 << 20));
                for (long i = 0; i < n; i++) {
                    list.add(value(elementType));
                }
                yield list;
            }
            case 10 -> file.get(U64, advance(8));
            case 11 -> file.get(U64, advance(8));
            case 12 -> file.get(ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), advance(8));
            default -> throw new ModelFormatException(path + ": unknown GGUF metadata value type " + type + " at byte " + position);
        };
    }

    public Path path() {
        return path;
    }

    public Map<String, Object> metadata() {
        return metadata;
    }

    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public long byteSize() {
        return file.byteSize();
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
