package bitskip.engine.tornado;

import java.util.Map;
import java.util.TreeMap;

/**
 * First-fit allocation of float ranges in the device arena, with freed ranges merged with their neighbours.
 * Ranges start on 32-float (128-byte) boundaries so that rows of adjacent work-items stay aligned.
 */
final class ArenaAllocator {
    static final int ALIGN = 32;

    /** Free ranges: start to length, in floats. */
    private final TreeMap<Integer, Integer> free = new TreeMap<>();
    private final int start, capacity;
    private long used;

    /** Manages [start, capacity). */
    ArenaAllocator(int start, int capacity) {
        this.start = start;
        this.capacity = capacity;
        free.put(start, capacity - start);
    }

    /** The start of n floats (n rounded up to the alignment), or -1 when no free range is large enough. */
    int allocate(int n) {
        int len = roundUp(Math.max(n, 1));
        for (Map.Entry<Integer, Integer> e : free.entrySet()) {
            if (e.getValue() >= len) {
                int at = e.getKey();
                free.remove(at);
                if (e.getValue() > len) {
                    free.put(at + len, e.getValue() - len);
                }
                used += len;
                return at;
            }
        }
        return -1;
    }

    /** Returns the range allocated at `at` for n floats. */
    void release(int at, int n) {
        int len = roundUp(Math.max(n, 1));
        used -= len;
        Map.Entry<Integer, Integer> before = free.lowerEntry(at);
        if (before != null && before.getKey() + before.getValue() == at) {
            at = before.getKey();
            len += before.getValue();
            free.remove(before.getKey());
        }
        Integer after = free.get(at + len);
        if (after != null) {
            free.remove(at + len);
            len += after;
        }
        free.put(at, len);
    }

    /** Floats allocated now (rounded to the alignment). */
    long used() {
        return used;
    }

    /** Floats that can be allocated in all. */
    long capacity() {
        return capacity - start;
    }

    /** The largest single range that can be allocated now. */
    long largestFree() {
        long m = 0;
        for (int v : free.values()) {
            m = Math.max(m, v);
        }
        return m;
    }

    static int roundUp(int n) {
        return (int) (((long) n + ALIGN - 1) / ALIGN * ALIGN);
    }
}
