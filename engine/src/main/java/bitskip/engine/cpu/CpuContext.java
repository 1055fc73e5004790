package bitskip.engine.cpu;

import bitskip.parallel.Pool;

/**
 * What every op family of the CPU backend shares: the thread pool, the vector switch, and per-thread heap
 * scratch. Scratch grows only in {@link #planScratch}, before a parallel region reads it.
 */
final class CpuContext {
    final Pool pool;
    final boolean vector;
    final int threads;
    private float[][] rowScratch;

    CpuContext(Pool pool, boolean vector) {
        this.pool = pool;
        this.vector = vector;
        this.threads = pool.threads();
        this.rowScratch = new float[threads][];
    }

    /** Makes every thread's scratch hold n floats (call before the parallel region). */
    void planScratch(int n) {
        for (int w = 0; w < threads; w++) {
            if (rowScratch[w] == null || rowScratch[w].length < n) {
                rowScratch[w] = new float[n];
            }
        }
    }

    /** Thread {@code worker}'s scratch, as planned. */
    float[] scratch(int worker) {
        return rowScratch[worker];
    }
}
