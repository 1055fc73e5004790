package bitskip.model.infer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;

/**
 * Splits a range of output rows over a fixed pool of worker threads. Each row is computed by exactly one
 * thread with the same code whatever the split, so results never depend on the thread count.
 */
public final class Parallel {
    /** Runs body(from, to) over a sub-range. */
    @FunctionalInterface
    public interface Range {
        void run(int from, int to);
    }

    private static final Parallel SERIAL = new Parallel(1);

    private final int threads;
    private final ForkJoinPool pool;

    public Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.pool = threads == 1 ? null : new ForkJoinPool(threads, p -> {
            var t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
            t.setDaemon(true);
            t.setName("bitskip-infer-" + t.getPoolIndex());
            return t;
        }, null, false);
    }

    public static Parallel serial() {
        return SERIAL;
    }

    /** One thread per available processor. */
    public static Parallel ofAllCores() {
        return new Parallel(Runtime.getRuntime().availableProcessors());
    }

    public int threads() {
        return threads;
    }

    /**
     * Runs body over [0, n) in contiguous chunks, in parallel when there is enough work (work = n times the
     * cost of one row, in multiply-adds; below about 2^15 the threads cost more than they save).
     */
    public void forRange(int n, long work, Range body) {
        if (pool == null || n < 2 || work < (1L << 15)) {
            body.run(0, n);
            return;
        }
        int parts = Math.min(n, threads);
        List<ForkJoinTask<?>> tasks = new ArrayList<>(parts);
        for (int p = 0; p < parts; p++) {
            int from = (int) ((long) n * p / parts), to = (int) ((long) n * (p + 1) / parts);
            tasks.add(ForkJoinTask.adapt(() -> body.run(from, to)));
        }
        pool.submit(() -> ForkJoinTask.invokeAll(tasks)).join();
    }
}
