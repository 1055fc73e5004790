package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ParallelTest {
    private static final long BIG = 1L << 20; // enough work to go parallel

    @Test
    void everyRowRunsExactlyOnceForAnySizeAndTeam() {
        for (int threads : new int[] {1, 2, 3, 5}) {
            Parallel par = new Parallel(threads);
            for (int n : new int[] {0, 1, 2, 3, 4, 7, 100, 1001}) {
                for (int rep = 0; rep < 50; rep++) { // back-to-back calls: workers awake, and some parked in between
                    AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(n, 1));
                    par.forRange(n, BIG, (from, to) -> {
                        for (int i = from; i < to; i++) {
                            hits.incrementAndGet(i);
                        }
                    });
                    for (int i = 0; i < n; i++) {
                        assertEquals(1, hits.get(i), "threads " + threads + " n " + n + " row " + i);
                    }
                    if (rep == 25) {
                        sleepPastSpin();
                    }
                }
            }
        }
    }

    @Test
    void aFailureInAnyPartReachesTheCallerAndTheTeamKeepsWorking() {
        Parallel par = new Parallel(2);
        for (int failing : new int[] {0, 99}) { // row 0: the caller's part; row 99: the worker's
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> par.forRange(100, BIG, (from, to) -> {
                if (from <= failing && failing < to) {
                    throw new IllegalStateException("row " + failing);
                }
            }));
            assertEquals("row " + failing, e.getMessage());
        }
        int[] out = new int[100];
        par.forRange(100, BIG, (from, to) -> {
            for (int i = from; i < to; i++) {
                out[i] = i;
            }
        });
        for (int i = 0; i < 100; i++) {
            assertEquals(i, out[i]);
        }
    }

    @Test
    void nestedAndConcurrentCallsRunSeriallyInsteadOfDeadlocking() throws Exception {
        Parallel par = new Parallel(2);
        AtomicIntegerArray hits = new AtomicIntegerArray(64 * 64);
        par.forRange(64, BIG, (from, to) -> {
            for (int i = from; i < to; i++) {
                int row = i;
                par.forRange(64, BIG, (f, t) -> {
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
                    par.forRange(1000, BIG, (from, to) -> {
                        for (int i = from; i < to; i++) {
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

    private static void sleepPastSpin() {
        try {
            Thread.sleep(Parallel.SPIN_NANOS / 1_000_000 + 2);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
