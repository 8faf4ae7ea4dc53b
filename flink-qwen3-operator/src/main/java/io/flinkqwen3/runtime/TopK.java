package io.flinkqwen3.runtime;

/**
 * The one top-k of the runtime (sampling candidates, MoE routing, the CLI's logits): indices of
 * the k largest values, largest first, ties to the lower index first as torch.topk returns them.
 */
public final class TopK {
    private TopK() {}

    /** Indices (relative to off) of the k largest of x[off..off+n), in O(n log k). */
    public static int[] indices(float[] x, int off, int n, int k) {
        if (k < 0 || k > n) {
            throw new IllegalArgumentException("top-" + k + " of " + n + " values");
        }
        // a heap of the best k so far whose root ranks last, so a better value replaces the root
        int[] heap = new int[k];
        for (int i = 0; i < n; i++) {
            if (i < k) {
                heap[i] = i;
                siftUp(heap, i, x, off);
            } else if (k > 0 && ranksBefore(x, off, i, heap[0])) {
                heap[0] = i;
                siftDown(heap, k, x, off);
            }
        }
        // heap sort: moving the last-ranked to the back leaves the best at the front
        for (int size = k - 1; size > 0; size--) {
            int last = heap[0];
            heap[0] = heap[size];
            heap[size] = last;
            siftDown(heap, size, x, off);
        }
        return heap;
    }

    // Partial selection on rank keys: O(n) expected and O(n log n) at worst for any k, used where k
    // is large (sampling with top_k = 0 or a huge top_k): the k best are moved to the front, unordered.

    /**
     * The rank of x[i] as one long: a larger key ranks first, in the order of {@link #indices}
     * (larger value first, equal values by lower index; -0 equals +0; NaN ranks after everything).
     */
    static long key(float value, int index) {
        int bits = Float.isNaN(value) ? Integer.MIN_VALUE : Float.floatToRawIntBits(value + 0f);
        int sortable = bits ^ ((bits >> 31) & 0x7fffffff); // signed order of the ints = order of the floats
        return ((long) sortable << 32) | (0xffffffffL - index);
    }

    /** The index a {@link #key} was made from. */
    static int index(long key) {
        return (int) (0xffffffffL - (key & 0xffffffffL));
    }

    /**
     * Rearranges keys[from, to) so that its k largest keys come first (in no particular order).
     * Returns the work done: the number of elements visited by partitioning and sorting, at most
     * about 3 (to - from) on typical input and bounded by O(n log n) on any input (after 2 log2(n)
     * unproductive rounds the rest is heap-sorted).
     */
    static long selectLargest(long[] keys, int from, int to, int k) {
        return select(keys, null, from, to, from + k);
    }

    /**
     * Moves the keys ranking before position {@code boundary} of the sorted order into [from,
     * boundary), carrying weights[i] along with keys[i] when weights is not null. Returns the work
     * done (elements visited).
     */
    static long select(long[] keys, double[] weights, int from, int to, int boundary) {
        long work = 0;
        int lo = from, hi = to, rounds = 2 * (32 - Integer.numberOfLeadingZeros(Math.max(1, to - from)));
        while (hi - lo > SMALL && lo < boundary && boundary < hi) {
            if (rounds-- == 0) {
                return work + sortDescending(keys, weights, lo, hi);
            }
            int p = partition(keys, weights, lo, hi);
            work += hi - lo;
            if (p == boundary) {
                return work;
            } else if (p < boundary) {
                lo = p + 1;
            } else {
                hi = p;
            }
        }
        if (lo < boundary && boundary < hi) {
            work += sortDescending(keys, weights, lo, hi);
        }
        return work;
    }

    /** Ranges at most this long are insertion-sorted. */
    static final int SMALL = 24;

    /**
     * Partitions [lo, hi) (hi - lo > SMALL) around a median-of-three pivot: larger keys before it,
     * smaller after; returns the pivot's position.
     */
    static int partition(long[] keys, double[] weights, int lo, int hi) {
        int mid = (lo + hi) >>> 1, last = hi - 1;
        // order keys[lo] >= keys[mid] >= keys[last], then park the median at lo + 1 as the pivot
        if (keys[mid] > keys[lo]) swap(keys, weights, mid, lo);
        if (keys[last] > keys[lo]) swap(keys, weights, last, lo);
        if (keys[last] > keys[mid]) swap(keys, weights, last, mid);
        swap(keys, weights, mid, lo + 1);
        long pivot = keys[lo + 1];
        int i = lo + 1, j = last; // keys[lo] >= pivot and keys[last] <= pivot are sentinels
        while (true) {
            while (keys[++i] > pivot) {}
            while (keys[--j] < pivot) {}
            if (i >= j) {
                break;
            }
            swap(keys, weights, i, j);
        }
        swap(keys, weights, lo + 1, j);
        return j;
    }

    /** Sorts [lo, hi) largest key first (insertion sort when short, heap sort otherwise); returns the work. */
    static long sortDescending(long[] keys, double[] weights, int lo, int hi) {
        int n = hi - lo;
        if (n <= SMALL) {
            for (int i = lo + 1; i < hi; i++) {
                for (int j = i; j > lo && keys[j] > keys[j - 1]; j--) {
                    swap(keys, weights, j, j - 1);
                }
            }
            return (long) n * n;
        }
        // a min-heap at the front, so popping the smallest to the back leaves the largest first
        for (int i = n / 2 - 1; i >= 0; i--) {
            siftDownMin(keys, weights, lo, i, n);
        }
        for (int size = n - 1; size > 0; size--) {
            swap(keys, weights, lo, lo + size);
            siftDownMin(keys, weights, lo, 0, size);
        }
        return (long) n * (33 - Integer.numberOfLeadingZeros(n));
    }

    private static void siftDownMin(long[] keys, double[] weights, int base, int at, int size) {
        for (int child; (child = 2 * at + 1) < size; at = child) {
            if (child + 1 < size && keys[base + child + 1] < keys[base + child]) {
                child++;
            }
            if (keys[base + at] <= keys[base + child]) {
                return;
            }
            swap(keys, weights, base + at, base + child);
        }
    }

    private static void swap(long[] keys, double[] weights, int i, int j) {
        long k = keys[i];
        keys[i] = keys[j];
        keys[j] = k;
        if (weights != null) {
            double w = weights[i];
            weights[i] = weights[j];
            weights[j] = w;
        }
    }

    /** Whether index i comes before index j: a larger value, or an equal one at a lower index. */
    private static boolean ranksBefore(float[] x, int off, int i, int j) {
        return x[off + i] > x[off + j] || (x[off + i] == x[off + j] && i < j);
    }

    private static void siftUp(int[] heap, int at, float[] x, int off) {
        while (at > 0 && ranksBefore(x, off, heap[(at - 1) / 2], heap[at])) {
            swap(heap, at, (at - 1) / 2);
            at = (at - 1) / 2;
        }
    }

    private static void siftDown(int[] heap, int size, float[] x, int off) {
        for (int at = 0, child; (child = 2 * at + 1) < size; at = child) {
            if (child + 1 < size && ranksBefore(x, off, heap[child], heap[child + 1])) {
                child++;
            }
            if (!ranksBefore(x, off, heap[at], heap[child])) {
                return;
            }
            swap(heap, at, child);
        }
    }

    private static void swap(int[] a, int i, int j) {
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
