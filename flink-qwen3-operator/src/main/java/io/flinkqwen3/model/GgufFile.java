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

    /** ggml's GGML_MAX_DIMS. */
    static final int MAX_DIMS = 4;
    /** Metadata strings are token spellings and chat templates: a few KB at most. */
    static final long MAX_STRING_BYTES = 16L << 20;
    /** Metadata values (array elements included) of the whole file: ~450,000 in a Qwen3 file. */
    static final long MAX_METADATA_VALUES = 1L << 23;
    /** Arrays of arrays are legal GGUF but unused by llama.cpp; deeper nesting is refused. */
    static final int MAX_ARRAY_DEPTH = 2;
    /** Smallest encoding of a key/value (8-byte key length, 4-byte type, 1-byte value) and of a tensor info. */
    private static final long MIN_KV_BYTES = 13, MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;

    private long metadataValues;

    private ModelFormatException error(String what) {
        return new ModelFormatException(path + ": " + what);
    }

    private long remaining() {
        return file.byteSize() - position;
    }

    /** A u64 count that must fit in what is left of the file at {@code minBytes} each. */
    private long count(long value, long minBytes, String field) {
        if (value < 0 || value > remaining() / minBytes) {
            throw error("truncated GGUF header (" + file.byteSize() + " bytes) or corrupt " + field + ": it is "
                    + Long.toUnsignedString(value) + ", which needs at least " + minBytes + " bytes each, but only "
                    + remaining() + " bytes remain after byte " + position);
        }
        return value;
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
        count(kvCount, MIN_KV_BYTES, "metadata count (header field n_kv)");
        for (long i = 0; i < kvCount; i++) {
            String key = string("key of metadata entry " + i);
            if (metadata.containsKey(key)) {
                throw error("metadata key '" + key + "' appears twice");
            }
            metadata.put(key, value(file.get(U32, advance(4)), key, 0));
        }
        count(tensorCount, MIN_TENSOR_INFO_BYTES, "tensor count (header field n_tensors)");
        record Pending(String name, long[] dims, int type, long offset) {}
        List<Pending> infos = new ArrayList<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = string("name of tensor " + i);
            int nDims = file.get(U32, advance(4));
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw error("tensor '" + name + "' has n_dims " + Integer.toUnsignedString(nDims) + ", expected 1 to " + MAX_DIMS);
            }
            long[] dims = new long[nDims];
            for (int d = 0; d < dims.length; d++) {
                dims[d] = file.get(U64, advance(8));
                if (dims[d] < 1) {
                    throw error("tensor '" + name + "' has dimension " + d + " = " + Long.toUnsignedString(dims[d])
                            + ", expected a positive size");
                }
            }
            infos.add(new Pending(name, dims, file.get(U32, advance(4)), file.get(U64, advance(8))));
        }
        Object alignmentValue = metadata.getOrDefault("general.alignment", 32L);
        if (!(alignmentValue instanceof Number a) || alignmentValue instanceof Float || alignmentValue instanceof Double
                || a.longValue() <= 0 || Long.bitCount(a.longValue()) != 1 || a.longValue() > (1 << 30)) {
            throw error("metadata 'general.alignment' is " + alignmentValue + ", expected a power of two (default 32)");
        }
        long alignment = ((Number) alignmentValue).longValue();
        long dataStart = (position + alignment - 1) / alignment * alignment;
        long dataBytes = file.byteSize() - dataStart;
        record Extent(String name, long begin, long end) {}
        List<Extent> extents = new ArrayList<>();
        for (Pending p : infos) {
            DType type = DType.fromGgml(p.type());
            if (type == null) {
                throw new ModelFormatException(path + ": tensor '" + p.name() + "' has ggml type " + p.type() + " ("
                        + DType.ggmlName(p.type()) + "), supported are " + DType.supportedGgml()
                        + "; convert the model with llama-quantize to one of them (Q4_K_M, Q5_K_M, Q8_0, ...)");
            }
            if (p.dims()[0] % type.blockElements() != 0) {
                throw error("tensor '" + p.name() + "' of type " + type + " has rows of " + p.dims()[0]
                        + " weights, expected a multiple of its block size " + type.blockElements());
            }
            long elements = 1;
            for (long d : p.dims()) {
                if (d > Long.MAX_VALUE / type.blockBytes() / elements) {
                    throw error("tensor '" + p.name() + "' has dimensions " + java.util.Arrays.toString(p.dims())
                            + " whose size overflows");
                }
                elements *= d;
            }
            long bytes = type.byteSize(elements);
            if (p.offset() < 0 || p.offset() % alignment != 0) {
                throw error("tensor '" + p.name() + "' has data offset " + Long.toUnsignedString(p.offset())
                        + ", expected a multiple of the alignment " + alignment);
            }
            // bytes and offset are each checked against the file before they are added: a corrupt one overflows the sum
            if (bytes > dataBytes) {
                throw error("tensor '" + p.name() + "' has dimensions " + java.util.Arrays.toString(p.dims()) + ": " + elements
                        + " elements of " + type + " take " + bytes + " bytes, more than the file's data section holds (" + dataBytes
                        + " of the file's " + file.byteSize() + " bytes): a dimension is corrupt or the file is truncated");
            }
            if (p.offset() > dataBytes - bytes) {
                throw error(p.offset() <= dataBytes ? "truncated: tensor '" + p.name() + "' ends at byte " + (dataStart + p.offset() + bytes)
                        + " but the file has " + file.byteSize() + " bytes"
                        : "tensor '" + p.name() + "' has data offset " + p.offset() + " + size " + bytes + " bytes, past the end of the file ("
                        + file.byteSize() + " bytes, data section from byte " + dataStart + "): the offset is corrupt or the file is truncated");
            }
            if (tensors.containsKey(p.name())) {
                throw error("tensor '" + p.name() + "' appears twice");
            }
            extents.add(new Extent(p.name(), p.offset(), p.offset() + bytes));
            tensors.put(p.name(), new TensorInfo(p.name(), p.dims(), type, file.asSlice(dataStart + p.offset(), bytes)));
        }
        extents.sort(java.util.Comparator.comparingLong(Extent::begin));
        for (int i = 1; i < extents.size(); i++) {
            Extent before = extents.get(i - 1), at = extents.get(i);
            if (at.begin() < before.end()) {
                throw error("tensors '" + before.name() + "' [" + before.begin() + ", " + before.end() + ") and '" + at.name()
                        + "' [" + at.begin() + ", " + at.end() + ") overlap in the data section");
            }
        }
    }

    private long advance(long bytes) {
        if (bytes > remaining()) {
            throw new IndexOutOfBoundsException("need " + bytes + " bytes at " + position);
        }
        long at = position;
        position += bytes;
        return at;
    }

    private String string(String field) {
        long length = file.get(U64, advance(8));
        if (length < 0 || length > MAX_STRING_BYTES || length > remaining()) {
            throw error(field + " has length " + Long.toUnsignedString(length) + " at byte " + (position - 8) + ", expected at most "
                    + Math.min(MAX_STRING_BYTES, remaining()) + " bytes");
        }
        byte[] bytes = file.asSlice(advance(length), length).toArray(ValueLayout.JAVA_BYTE);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** Bytes the smallest value of a metadata type takes (for bounding array lengths), or -1 for an unknown type. */
    private static long minBytes(int type) {
        return switch (type) {
            case 0, 1, 7 -> 1;
            case 2, 3 -> 2;
            case 4, 5, 6 -> 4;
            case 8, 10, 11, 12 -> 8;
            case 9 -> 12;
            default -> -1;
        };
    }

    private Object value(int type, String key, int depth) {
        if (++metadataValues > MAX_METADATA_VALUES) {
            throw error("metadata '" + key + "': more than " + MAX_METADATA_VALUES + " metadata values in the file");
        }
        return switch (type) {
            case 0 -> file.get(ValueLayout.JAVA_BYTE, advance(1)) & 0xFF;
            case 1 -> (int) file.get(ValueLayout.JAVA_BYTE, advance(1));
            case 2 -> file.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), advance(2)) & 0xFFFF;
            case 3 -> (int) file.get(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), advance(2));
            case 4 -> Integer.toUnsignedLong(file.get(U32, advance(4)));
            case 5 -> file.get(U32, advance(4));
            case 6 -> file.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), advance(4));
            case 7 -> file.get(ValueLayout.JAVA_BYTE, advance(1)) != 0;
            case 8 -> string("metadata '" + key + "'");
            case 9 -> {
                int elementType = file.get(U32, advance(4));
                long n = file.get(U64, advance(8));
                long min = minBytes(elementType);
                if (min < 0) {
                    throw error("metadata '" + key + "' is an array of unknown type " + elementType);
                }
                if (elementType == 9 && depth + 1 >= MAX_ARRAY_DEPTH) {
                    throw error("metadata '" + key + "' nests arrays deeper than " + MAX_ARRAY_DEPTH + " levels");
                }
                count(n, min, "metadata '" + key + "' array length");
                List<Object> list = new ArrayList<>((int) Math.min(n, 1 << 20));
                for (long i = 0; i < n; i++) {
                    list.add(value(elementType, key, depth + 1));
                }
                yield list;
            }
            case 10 -> file.get(U64, advance(8));
            case 11 -> file.get(U64, advance(8));
            case 12 -> file.get(ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), advance(8));
            default -> throw new ModelFormatException(path + ": metadata '" + key + "' has unknown value type " + type
                    + " at byte " + (position - 4));
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
