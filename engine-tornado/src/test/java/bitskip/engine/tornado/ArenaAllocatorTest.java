package bitskip.engine.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The arena's first-fit allocator (plain Java: runs without a device). */
class ArenaAllocatorTest {
    @Test
    void rangesAreAlignedAndFreedRangesMergeWithTheirNeighbours() {
        ArenaAllocator a = new ArenaAllocator(64, 64 + 10 * ArenaAllocator.ALIGN);
        int x = a.allocate(1), y = a.allocate(ArenaAllocator.ALIGN + 1), z = a.allocate(3);
        assertEquals(64, x);
        assertEquals(64 + ArenaAllocator.ALIGN, y);
        assertEquals(64 + 3 * ArenaAllocator.ALIGN, z);
        assertEquals(4L * ArenaAllocator.ALIGN, a.used());
        a.release(y, ArenaAllocator.ALIGN + 1);
        a.release(x, 1);
        assertEquals(6L * ArenaAllocator.ALIGN, a.largestFree(), "the tail stays one range");
        assertEquals(64, a.allocate(3 * ArenaAllocator.ALIGN), "x and y merged into one range of 3 blocks");
        a.release(z, 3);
        assertEquals(-1, a.allocate(8 * ArenaAllocator.ALIGN), "7 blocks are free, not 8");
        assertEquals(64 + 3 * ArenaAllocator.ALIGN, a.allocate(7 * ArenaAllocator.ALIGN));
    }

    @Test
    void sizesParseWithUnitsAndNonsenseIsRefusedByName() {
        assertEquals(512L << 20, KernelPlan.parseBytes("512m"));
        assertEquals(6L << 30, KernelPlan.parseBytes("6G"));
        assertEquals(1000, KernelPlan.parseBytes("1000"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KernelPlan.parseBytes("lots"));
        assertEquals(true, e.getMessage().contains(KernelPlan.MEMORY_PROPERTY), e.getMessage());
    }
}
