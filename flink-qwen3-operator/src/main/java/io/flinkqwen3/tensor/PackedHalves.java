package io.flinkqwen3.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The layout of 16-bit float weights (bf16, f16) in panels: per column pair (2k, 2k+1), P ints; int
 * lane l holds row l's weight of column 2k in its low half and of column 2k+1 in its high half, 2
 * bytes per weight as in the file. The subclasses own the kernels, which differ in how they widen a
 * half to fp32; every batch streams through them (see each class).
 */
abstract sealed class PackedHalves extends PackedMatrix permits PackedBF16, PackedF16 {
    /** Bytes of one column pair of a panel. */
    static final int PAIR_BYTES = 4 * P;
    /** The exponent bits of a half: all ones is an infinity or NaN. */
    private final int exponent;

    PackedHalves(MemorySegment data, int rows, int cols, int exponent) {
        super(data, rows, cols, panelBytes(cols), Integer.MAX_VALUE);
        this.exponent = exponent;
    }

    static long panelBytes(int cols) {
        return (long) cols / 2 * PAIR_BYTES;
    }

    /** The weight a half's 16 bits stand for. */
    abstract float toFloat(short bits);

    @Override
    final float weight(int row, int col) {
        int bits = data.get(ValueLayout.JAVA_INT_UNALIGNED, offset(row / P, col / 2, PAIR_BYTES) + 4L * (row % P));
        return toFloat((short) (col % 2 == 0 ? bits : bits >>> 16));
    }

    /** Copies the file's pairs as they are, refusing a weight that is not a finite number. */
    @Override
    final void packPanel(Matrix source, int panel) {
        for (int lane = 0; lane < P && panel * P + lane < rows; lane++) {
            long from = (long) (panel * P + lane) * cols * 2, to = offset(panel, 0, PAIR_BYTES) + 4L * lane;
            for (int k = 0; k < cols; k += 2, from += 4, to += 4L * PAIR_BYTES) {
                int pair = source.data.get(ValueLayout.JAVA_INT_UNALIGNED, from);
                if ((pair & exponent) == exponent || (pair & exponent << 16) == exponent << 16) { // inf or NaN
                    checkFiniteWeight(toFloat((short) pair), panel * P + lane, k);
                    checkFiniteWeight(toFloat((short) (pair >>> 16)), panel * P + lane, k + 1);
                }
                data.set(ValueLayout.JAVA_INT_UNALIGNED, to, pair);
            }
        }
    }
}
