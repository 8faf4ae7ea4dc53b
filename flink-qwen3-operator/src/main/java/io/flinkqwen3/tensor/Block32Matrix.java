package io.flinkqwen3.tensor;

import static io.flinkqwen3.tensor.Kernels.F;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** ggml's 32-weight block formats: an f16 scale first, then the packed quants; rows are whole blocks. */
abstract sealed class Block32Matrix extends Matrix permits Q8_0Matrix, Q4_0Matrix, Q4_1Matrix, Q5_0Matrix, Q5_1Matrix, IQ4_NLMatrix {
    static final int BLOCK = 32;
    /** As many bytes as there are float lanes: one byte vector widens to one float vector. */
    static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(F.length() * 8));
    final long rowBytes;

    Block32Matrix(MemorySegment data, int rows, int cols) {
        super(data, rows, cols);
        this.rowBytes = (long) cols / BLOCK * type().blockBytes();
    }

    /** The block's scale d. */
    float scale(long block) {
        return f16(block);
    }

    /** Lane-count bytes of quants, starting j bytes after the block's scale. */
    ByteVector quantBytes(long block, int j) {
        return ByteVector.fromMemorySegment(B, data, block + 2 + j, ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Weight i (0..31) of the block at byte {@code block} without its scale, for the formats whose
     * weights are the block's f16 scale times an integer in -127..127 (Q5_0, IQ4_NL).
     *
     * @throws UnsupportedOperationException for the other formats
     */
    int quant(long block, int i) {
        throw new UnsupportedOperationException(type() + " weights are not a scale times an int8");
    }
}
