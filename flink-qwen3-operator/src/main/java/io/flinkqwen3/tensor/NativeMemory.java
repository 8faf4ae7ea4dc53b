package io.flinkqwen3.tensor;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Large off-heap buffers for weights (packed matrices, load-time quantization). On Linux they are
 * anonymous {@code mmap} mappings, like llama.cpp's buffers: outside the Java heap and outside
 * {@code -XX:MaxDirectMemorySize} (which Flink sets small for a task manager and {@link Arena#allocate}
 * counts against), released with {@code munmap} when their arena closes, and advised as transparent
 * huge pages, which spares the TLB when the kernels stream gigabytes per token. Elsewhere they come
 * from {@link Arena#allocate}.
 */
public final class NativeMemory {
    private static final int PROT_READ_WRITE = 0x1 | 0x2, MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20, MADV_HUGEPAGE = 14;
    private static final MethodHandle MMAP, MUNMAP, MADVISE;

    static {
        MethodHandle mmap = null, munmap = null, madvise = null;
        if (System.getProperty("os.name", "").startsWith("Linux")) {
            Linker linker = Linker.nativeLinker();
            var libc = linker.defaultLookup();
            mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                    FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
            munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
            madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                    FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        }
        MMAP = mmap;
        MUNMAP = munmap;
        MADVISE = madvise;
    }

    /** Bytes of anonymous mappings made here and not yet unmapped. */
    private static final java.util.concurrent.atomic.AtomicLong MAPPED = new java.util.concurrent.atomic.AtomicLong();

    private NativeMemory() {}

    /**
     * Bytes currently mapped by {@link #allocate} (Linux; 0 elsewhere): packed weights, converted
     * weights and KV caches until their arenas close (or, for automatic arenas, are collected).
     */
    public static long mappedBytes() {
        return MAPPED.get();
    }

    /**
     * {@code bytes} of zeroed memory, 4096-aligned, valid until {@code arena} closes; from a
     * {@link #slabArena} carved from its slabs instead, 64-byte aligned.
     *
     * @throws OutOfMemoryError when the operating system refuses the mapping
     */
    public static MemorySegment allocate(long bytes, Arena arena) {
        if (arena instanceof Slabs slabs) {
            return slabs.allocate(bytes, 64);
        }
        if (MMAP == null || bytes == 0) {
            return arena.allocate(bytes, 64);
        }
        try {
            var address = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, bytes, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
            if (address.address() == -1L) {
                throw new OutOfMemoryError("mmap of " + bytes + " bytes for weights failed: not enough memory for the packed model");
            }
            int ignored = (int) MADVISE.invokeExact(address, bytes, MADV_HUGEPAGE); // a hint; may be unsupported
            MAPPED.addAndGet(bytes);
            return address.reinterpret(bytes, arena, segment -> unmap(segment, bytes));
        } catch (OutOfMemoryError | RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("mmap failed", t);
        }
    }

    /**
     * An arena for many large buffers that are read together, such as a model's packed weight
     * matrices: it carves them, 64-byte aligned and one after another, from 2 MiB-aligned slabs of
     * {@link #SLAB_BYTES} or more (anonymous mappings advised as transparent huge pages; elsewhere
     * from {@link Arena#allocate}) and unmaps the slabs when it closes. Why: with one mapping per
     * matrix, matrices smaller than a huge page (an MoE expert's, a small model's) never get one, and
     * every matrix starts at a new mapping; decode reads them all per token. Measured on the 196
     * matrices of Qwen3-0.6B's layers (random weights), one token, 2 threads, AMD EPYC Zen 4, both
     * layouts alternating in one JVM: Q4_0 10.9 -> 10.3 ms, Q8_0 14.8 -> 14.6 (medians of 30).
     * Thread-safe; an allocation that does not fit the current slab starts a new one: the rest of
     * the old one costs address space, and memory only for the part of its last huge page that was
     * touched (at most 2 MiB). Where there is no mmap, every allocation comes from the arena as it
     * is (a slab from {@link Arena#allocate} would be zeroed, so resident, and count against the
     * direct memory limit).
     */
    public static Arena slabArena() {
        return new Slabs();
    }

    /** Bytes of one slab unless an allocation needs more. */
    static final long SLAB_BYTES = 256L << 20;
    private static final long HUGE_PAGE = 2L << 20;

    private static final class Slabs implements Arena {
        private final Arena slabs = Arena.ofShared();
        private MemorySegment current = MemorySegment.NULL;
        private long used;

        @Override
        public synchronized MemorySegment allocate(long byteSize, long byteAlignment) {
            if (byteSize < 0 || byteAlignment <= 0 || byteAlignment > HUGE_PAGE || Long.bitCount(byteAlignment) != 1) {
                throw new IllegalArgumentException("size must be >= 0 and alignment a power of two up to 2 MiB, got " + byteSize
                        + " bytes aligned to " + byteAlignment);
            }
            if (MMAP == null || byteSize == 0) {
                return slabs.allocate(byteSize, byteAlignment);
            }
            if (!slabs.scope().isAlive()) {
                throw new IllegalStateException("the arena is closed");
            }
            long at = (used + byteAlignment - 1) & -byteAlignment;
            if (at + byteSize > current.byteSize()) {
                long slab = Math.max(SLAB_BYTES, (byteSize + HUGE_PAGE - 1) & -HUGE_PAGE);
                MemorySegment mapped = NativeMemory.allocate(slab + HUGE_PAGE, slabs); // room to align the start
                long skip = ((mapped.address() + HUGE_PAGE - 1) & -HUGE_PAGE) - mapped.address();
                current = mapped.asSlice(skip, slab);
                at = 0;
            }
            used = at + byteSize;
            return current.asSlice(at, byteSize);
        }

        @Override
        public MemorySegment.Scope scope() {
            return slabs.scope();
        }

        @Override
        public void close() {
            slabs.close();
        }
    }

    private static void unmap(MemorySegment segment, long bytes) {
        try {
            int ignored = (int) MUNMAP.invokeExact(segment, bytes);
            MAPPED.addAndGet(-bytes);
        } catch (Throwable t) {
            throw new IllegalStateException("munmap failed", t);
        }
    }
}
