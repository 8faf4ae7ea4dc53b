package io.flinkqwen3.tensor;

/** Element types of stored tensors, with their on-disk names in safetensors and GGUF. */
public enum DType {
    F32(4), F16(2), BF16(2);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
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
}
