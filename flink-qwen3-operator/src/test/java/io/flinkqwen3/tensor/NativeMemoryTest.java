package io.flinkqwen3.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** The slab arena the packed weights live in: placement, zeroed memory, its Arena contract. */
class NativeMemoryTest {
    private static final long MIB = 1 << 20;

    @Test
    void allocationsLieSideBySideInHugePageAlignedSlabs() {
        boolean linux = System.getProperty("os.name", "").startsWith("Linux");
        try (var arena = NativeMemory.slabArena()) {
            MemorySegment a = arena.allocate(1000, 64), b = arena.allocate(3 * MIB, 64), c = arena.allocate(10, 64);
            for (MemorySegment s : new MemorySegment[] {a, b, c}) {
                assertEquals(0, s.address() % 64, "64-byte aligned");
                for (long i = 0; i < s.byteSize(); i += 4096) {
                    assertEquals(0, s.get(ValueLayout.JAVA_BYTE, i), "zeroed");
                }
            }
            if (linux) {
                assertEquals(0, a.address() % (2 * MIB), "a slab starts on a huge page");
                assertEquals(a.address() + 1024, b.address(), "the next allocation follows, rounded to 64 bytes");
                assertEquals(b.address() + 3 * MIB, c.address());
            }
            MemorySegment big = arena.allocate(NativeMemory.SLAB_BYTES + MIB, 64); // more than a slab: a slab of its own
            assertEquals(NativeMemory.SLAB_BYTES + MIB, big.byteSize());
            big.set(ValueLayout.JAVA_LONG, big.byteSize() - 8, 42L);
            assertEquals(42L, big.get(ValueLayout.JAVA_LONG, big.byteSize() - 8));
            assertEquals(0, arena.allocate(0, 8).byteSize());
        }
    }

    @Test
    void closingUnmapsTheSlabsAndEndsTheSegments() {
        long before = NativeMemory.mappedBytes();
        var arena = NativeMemory.slabArena();
        MemorySegment s = arena.allocate(5 * MIB, 64);
        s.set(ValueLayout.JAVA_INT, 0, 7);
        arena.close();
        // a slab is 258 MiB; other tests' background kernel checks may map a few MiB meanwhile
        assertTrue(NativeMemory.mappedBytes() - before < 64 * MIB, "the slab was unmapped: " + (NativeMemory.mappedBytes() - before) + " bytes left");
        assertThrows(IllegalStateException.class, () -> s.get(ValueLayout.JAVA_INT, 0), "a segment of a closed arena");
        assertThrows(IllegalStateException.class, () -> arena.allocate(64, 64));
    }

    @Test
    void badSizesAndAlignmentsAreRefused() {
        try (var arena = NativeMemory.slabArena()) {
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(-1, 64));
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(64, 0));
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(64, 48));
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(64, Long.MIN_VALUE));
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(64, 4 * MIB));
        }
    }
}
