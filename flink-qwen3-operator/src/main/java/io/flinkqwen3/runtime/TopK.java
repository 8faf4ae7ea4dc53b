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
