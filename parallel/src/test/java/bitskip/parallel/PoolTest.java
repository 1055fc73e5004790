package bitskip.parallel;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class PoolTest {

    @Test
    void everyItemRunsExactlyOnceForAnySizeGrainAndPool() {
        for (int threads : new int[] {1, 2, 3, 5}) {
            try (Pool pool = new Pool(threads)) {
                for (int n : new int[] {0, 1, 2, 3, 4, 7, 100, 1001}) {
                    for (int grain : new int[] {1, 3, 64}) {
                        for (int rep = 0; rep < 20; rep++) { // back-to-back calls: workers awake, some parked between
                            AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(n, 1));
                            pool.forRange(n, grain, (w, lo, hi) -> {
                                assertTrue(w >= 0 && w < pool.threads(), "worker index " + w);
                                for (int i = lo; i < hi; i++) {
                                    hits.incrementAndGet(i);
                                }
                            });
                            for (int i = 0; i < n; i++) {
                                assertEquals(1, hits.get(i), "threads " + threads + " n " + n + " item " + i);
                            }
                            if (rep == 10) {
                                sleepPastSpin(pool);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void chunksAreAFunctionOfTheRangeAndFollowTheGrain() {
        try (Pool pool = new Pool(2)) {
            assertEquals(1, pool.chunksFor(10, 64), "one chunk below the grain");
            assertEquals(2, pool.chunksFor(100, 64));
            assertEquals(pool.threads() * Pool.CHUNKS_PER_THREAD, pool.chunksFor(1_000_000, 1), "capped per thread");
        }
    }

    @Test
    void neverMoreThreadsThanProcessors() {
        try (Pool pool = new Pool(Pool.cores() + 7)) {
            assertEquals(Pool.cores(), pool.threads());
            Set<String> names = ConcurrentHashMap.newKeySet();
            for (int rep = 0; rep < 100; rep++) {
                pool.forRange(10_000, 1, (w, lo, hi) -> names.add(Thread.currentThread().getName()));
            }
            assertTrue(names.size() <= Pool.cores(), names.toString());
        }
    }

    @Test
    void onlyWorkersWithAChunkAreWoken() {
        try (Pool pool = new Pool(Pool.cores())) {
            Set<String> names = ConcurrentHashMap.newKeySet();
            for (int rep = 0; rep < 200; rep++) {
                pool.forRange(2, 1, (w, lo, hi) -> names.add(Thread.currentThread().getName()));
            }
            assertTrue(names.size() <= 2, "two chunks ran on " + names);
        }
    }

    @Test
    void aFailureInAnyChunkReachesTheCallerAndThePoolKeepsWorking() {
        try (Pool pool = new Pool(2)) {
            for (int failing : new int[] {0, 99}) {
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.forRange(100, 1, (w, lo, hi) -> {
                    if (lo <= failing && failing < hi) {
                        throw new IllegalStateException("item " + failing);
                    }
                }));
                assertEquals("item " + failing, e.getMessage());
            }
            int[] out = new int[100];
            pool.forRange(100, 1, (w, lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    out[i] = i;
                }
            });
            for (int i = 0; i < 100; i++) {
                assertEquals(i, out[i]);
            }
        }
    }

    @Test
    void nestedAndConcurrentCallsRunSeriallyInsteadOfDeadlocking() throws Exception {
        try (Pool pool = new Pool(2)) {
            AtomicIntegerArray hits = new AtomicIntegerArray(64 * 64);
            pool.forRange(64, 1, (w, lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    int row = i;
                    pool.forRange(64, 1, (w2, f, t) -> {
                        for (int j = f; j < t; j++) {
                            hits.incrementAndGet(row * 64 + j);
                        }
                    });
                }
            });
            for (int i = 0; i < 64 * 64; i++) {
                assertEquals(1, hits.get(i), "cell " + i);
            }
            long[] sums = new long[2];
            Thread[] callers = new Thread[2];
            for (int c = 0; c < 2; c++) {
                int id = c;
                callers[c] = new Thread(() -> {
                    for (int rep = 0; rep < 2000; rep++) {
                        long[] part = new long[1000];
                        pool.forRange(1000, 1, (w, lo, hi) -> {
                            for (int i = lo; i < hi; i++) {
                                part[i] = i;
                            }
                        });
                        long s = 0;
                        for (long v : part) {
                            s += v;
                        }
                        sums[id] += s;
                    }
                });
                callers[c].start();
            }
            for (Thread t : callers) {
                t.join(60_000);
                assertFalse(t.isAlive(), "a caller is stuck");
            }
            assertEquals(2000L * 999 * 1000 / 2, sums[0]);
            assertEquals(2000L * 999 * 1000 / 2, sums[1]);
        }
    }

    @Test
    void useAfterCloseFailsAndTheWorkersEnd() throws Exception {
        Pool pool = new Pool(2);
        pool.forRange(100, 1, (w, lo, hi) -> { });
        pool.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.forRange(10, 1, (w, lo, hi) -> { }));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        pool.close(); // twice is harmless
        Pool.serial().close(); // the shared serial pool stays usable
        int[] one = new int[1];
        Pool.serial().forRange(1, 1, (w, lo, hi) -> one[0]++);
        assertEquals(1, one[0]);
    }

    private static void sleepPastSpin(Pool pool) {
        try {
            Thread.sleep(pool.spinNanos() / 1_000_000 + 2);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
