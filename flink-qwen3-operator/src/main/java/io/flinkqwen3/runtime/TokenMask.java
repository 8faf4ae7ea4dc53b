package io.flinkqwen3.runtime;

import java.util.Arrays;

/**
 * A set of allowed token ids, stored as the shorter of its list of allowed ids or its list of
 * disallowed ids, applied to a row of logits by setting the disallowed ones to -infinity. Ids at
 * or beyond the tokenizer's size (padding rows of the embedding) are always disallowed.
 */
public final class TokenMask {
    private final int size;
    private final int count;
    /** Sorted; the allowed ids when {@code sparse}, else the disallowed ones. */
    private final int[] ids;
    private final boolean sparse;

    private TokenMask(int size, int count, int[] ids, boolean sparse) {
        this.size = size;
        this.count = count;
        this.ids = ids;
        this.sparse = sparse;
    }

    /** allowed[id] for every id of the tokenizer. */
    static TokenMask of(boolean[] allowed) {
        int count = 0;
        for (boolean a : allowed) {
            count += a ? 1 : 0;
        }
        boolean sparse = count <= allowed.length / 2;
        int[] ids = new int[sparse ? count : allowed.length - count];
        int n = 0;
        for (int i = 0; i < allowed.length; i++) {
            if (allowed[i] == sparse) {
                ids[n++] = i;
            }
        }
        return new TokenMask(allowed.length, count, ids, sparse);
    }

    /** How many ids are allowed. */
    public int count() {
        return count;
    }

    public boolean allows(int id) {
        if (id < 0 || id >= size) {
            return false;
        }
        return (Arrays.binarySearch(ids, id) >= 0) == sparse;
    }

    /** Sets logits[off + id] to -infinity for every disallowed id in [0, vocab). */
    public void apply(float[] logits, int off, int vocab) {
        if (sparse) {
            float[] keep = SCRATCH.get();
            if (keep.length < count) {
                keep = new float[count];
                SCRATCH.set(keep);
            }
            for (int i = 0; i < count; i++) {
                keep[i] = ids[i] < vocab ? logits[off + ids[i]] : 0f;
            }
            Arrays.fill(logits, off, off + vocab, Float.NEGATIVE_INFINITY);
            for (int i = 0; i < count; i++) {
                if (ids[i] < vocab) {
                    logits[off + ids[i]] = keep[i];
                }
            }
        } else {
            for (int id : ids) {
                if (id < vocab) {
                    logits[off + id] = Float.NEGATIVE_INFINITY;
                }
            }
            if (vocab > size) {
                Arrays.fill(logits, off + size, off + vocab, Float.NEGATIVE_INFINITY);
            }
        }
    }

    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[0]);
}
