package io.flinkqwen3.tensor;

/**
 * Storage types of weights: plain floats and ggml's block-quantized formats. A block holds
 * {@link #blockElements()} weights in {@link #blockBytes()} bytes (1 and the element size for
 * the float types).
 */
public enum DType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    BF16(30, 1, 2),
    Q8_0(8, 32, 34),
    Q4_0(2, 32, 18),
    Q4_K(12, 256, 144),
    Q6_K(14, 256, 210);

    private final int ggmlId;
    private final int blockElements;
    private final int blockBytes;

    DType(int ggmlId, int blockElements, int blockBytes) {
        this.ggmlId = ggmlId;
        this.blockElements = blockElements;
        this.blockBytes = blockBytes;
    }

    public int blockElements() {
        return blockElements;
    }

    public int blockBytes() {
        return blockBytes;
    }

    public boolean quantized() {
        return blockElements > 1;
    }

    /** Bytes that {@code elements} weights take; they must fill whole blocks. */
    public long byteSize(long elements) {
        if (elements % blockElements != 0) {
            throw new IllegalArgumentException(this + " stores blocks of " + blockElements + " weights; " + elements + " is not a multiple");
        }
        return elements / blockElements * blockBytes;
    }

    /** Safetensors dtype string ("F32", "F16", "BF16"), or null when we do not support it. */
    public static DType fromSafetensors(String name) {
        return switch (name) {
            case "F32" -> F32;
            case "F16" -> F16;
            case "BF16" -> BF16;
            default -> null;
        };
    }

    /** The ggml type id of a GGUF tensor, or null when we do not support it. */
    public static DType fromGgml(int id) {
        for (DType t : values()) {
            if (t.ggmlId == id) {
                return t;
            }
        }
        return null;
    }
}
