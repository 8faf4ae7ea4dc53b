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
    Q4_1(3, 32, 20),
    Q5_0(6, 32, 22),
    Q5_1(7, 32, 24),
    Q2_K(10, 256, 84),
    Q3_K(11, 256, 110),
    Q4_K(12, 256, 144),
    Q5_K(13, 256, 176),
    Q6_K(14, 256, 210),
    IQ4_NL(20, 32, 18),
    IQ4_XS(23, 256, 136);

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

    /** ggml's names of its type ids (ggml.h, enum ggml_type), for messages about the ones we do not read. */
    private static final String[] GGML_NAMES = {"F32", "F16", "Q4_0", "Q4_1", null, null, "Q5_0", "Q5_1", "Q8_0", "Q8_1",
        "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",
        "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", null, null, null, "TQ1_0", "TQ2_0", null, null, null, "MXFP4"};

    /** ggml's name of type id {@code id} ("Q5_1", "IQ4_XS", ...), or "unknown" for an id it does not define. */
    public static String ggmlName(int id) {
        return id >= 0 && id < GGML_NAMES.length && GGML_NAMES[id] != null ? GGML_NAMES[id] : "unknown";
    }

    /** The ggml types we read, by name, for messages: "F32, F16, ..., IQ4_XS". */
    public static String supportedGgml() {
        return java.util.Arrays.stream(values()).map(DType::name).collect(java.util.stream.Collectors.joining(", "));
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
