package io.flinkqwen3.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ParallelTest {
    @Test
    void aWorkerExceptionReachesTheCallerAndThePoolKeepsWorking() throws InterruptedException {
        try (var parallel = new Parallel(2)) {
            Thread caller = Thread.currentThread();
            var thrown = new IllegalStateException("boom");
            var workerFailed = new CountDownLatch(1);
            var e = assertThrows(RuntimeException.class, () -> parallel.forEach(64, i -> {
                if (Thread.currentThread() != caller) {
                    workerFailed.countDown();
                    throw thrown;
                }
                // the caller holds its chunk until the worker has failed in another one
                try {
                    assertTrue(workerFailed.await(10, TimeUnit.SECONDS), "no worker ran a chunk");
                } catch (InterruptedException ex) {
                    throw new AssertionError(ex);
                }
            }));
            assertSame(thrown, e.getCause());

            for (int round = 0; round < 3; round++) {
                assertEachIndexRunsOnce(parallel, 1000);
            }
        }
    }

    @Test
    void aCallerExceptionIsRethrownToo() {
        try (var parallel = new Parallel(2)) {
            var thrown = new ArithmeticException("every index fails");
            var e = assertThrows(RuntimeException.class, () -> parallel.forEach(100, i -> {
                throw thrown;
            }));
            assertSame(thrown, e.getCause());
            assertEachIndexRunsOnce(parallel, 100);
        }
    }

    private static void assertEachIndexRunsOnce(Parallel parallel, int n) {
        var counts = new AtomicIntegerArray(n);
        parallel.forEach(n, counts::incrementAndGet);
        for (int i = 0; i < n; i++) {
            assertEquals(1, counts.get(i), "index " + i);
        }
    }
}
