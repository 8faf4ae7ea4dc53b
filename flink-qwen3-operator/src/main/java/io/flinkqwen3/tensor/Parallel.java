package io.flinkqwen3.tensor;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;
import java.util.function.IntConsumer;

/**
 * A fixed pool of worker threads that kernels split their work over. One pool per model: every
 * matrix multiply of a forward pass runs on it, so the number of threads never depends on how many
 * requests are in flight.
 */
public final class Parallel implements AutoCloseable {
    private final ForkJoinPool pool;
    private final int threads;

    public Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.pool = threads == 1 ? null : new ForkJoinPool(threads, p -> {
            var t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
            t.setName("qwen3-kernel-" + t.getPoolIndex());
            t.setDaemon(true);
            return t;
        }, null, false);
    }

    public int threads() {
        return threads;
    }

    /** Runs body(i) for i in [0, n), split into about 4 chunks per thread. */
    public void forEach(int n, IntConsumer body) {
        if (pool == null || n <= 1) {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
            return;
        }
        int chunks = Math.min(n, threads * 4);
        pool.invoke(new Range(0, chunks, n, chunks, body));
    }

    private static final class Range extends RecursiveAction {
        private final int from, to, n, chunks;
        private final IntConsumer body;

        Range(int from, int to, int n, int chunks, IntConsumer body) {
            this.from = from;
            this.to = to;
            this.n = n;
            this.chunks = chunks;
            this.body = body;
        }

        @Override
        protected void compute() {
            if (to - from > 1) {
                int mid = (from + to) >>> 1;
                ForkJoinTask.invokeAll(new Range(from, mid, n, chunks, body), new Range(mid, to, n, chunks, body));
                return;
            }
            int start = (int) ((long) from * n / chunks);
            int end = (int) ((long) (from + 1) * n / chunks);
            for (int i = start; i < end; i++) {
                body.accept(i);
            }
        }
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
    }
}
