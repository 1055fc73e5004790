package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/**
 * The inference kernels' view of the shared pool (bitskip.parallel.Pool, whose own tests cover chunking,
 * failures, nesting and concurrency): every row once, and small calls kept on the calling thread.
 */
class ParallelTest {
    private static final long BIG = 1L << 20; // enough work to go parallel

    @Test
    void everyRowRunsExactlyOnceForAnySizeAndTeam() {
        for (int threads : new int[] {1, 2, 3}) {
            try (Parallel par = new Parallel(threads)) {
                for (int n : new int[] {0, 1, 2, 7, 1001}) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(n, 1));
                    par.forRange(n, BIG, (from, to) -> {
                        for (int i = from; i < to; i++) {
                            hits.incrementAndGet(i);
                        }
                    });
                    for (int i = 0; i < n; i++) {
                        assertEquals(1, hits.get(i), "threads " + threads + " n " + n + " row " + i);
                    }
                }
            }
        }
    }

    @Test
    void aParallelCallIsOneContiguousChunkPerThread() {
        try (Parallel par = new Parallel(2)) {
            int t = par.threads(); // 1 where the machine has one core
            java.util.List<int[]> chunks = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
            par.forRange(1001, BIG, (from, to) -> chunks.add(new int[] {from, to}));
            chunks.sort(java.util.Comparator.comparingInt(c -> c[0]));
            assertEquals(t, chunks.size(), "chunks");
            for (int i = 0; i < t; i++) { // the pool's bounds: floor(i·n / chunks)
                assertArrayEquals(new int[] {i * 1001 / t, (i + 1) * 1001 / t}, chunks.get(i), "chunk " + i);
            }
        }
    }

    @Test
    void smallCallsRunOnTheCallingThreadInOnePiece() {
        try (Parallel par = new Parallel(2)) {
            Thread caller = Thread.currentThread();
            int[] calls = new int[1];
            par.forRange(1000, Parallel.MIN_PARALLEL_WORK - 1, (from, to) -> {
                assertSame(caller, Thread.currentThread());
                assertEquals(0, from);
                assertEquals(1000, to);
                calls[0]++;
            });
            assertEquals(1, calls[0]);
        }
    }
}
