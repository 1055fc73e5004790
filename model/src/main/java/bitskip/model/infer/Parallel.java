package bitskip.model.infer;

import bitskip.parallel.Pool;

/**
 * The inference kernels' view of the shared thread pool ({@link Pool}, the one the cpu backend trains
 * with): a range of output rows split over the pool when there is enough work to pay for it, else run on
 * the calling thread. Each row is computed by exactly one thread with the same code whatever the split,
 * so results never depend on the thread count.
 */
public final class Parallel implements AutoCloseable {
    /** Runs body(from, to) over a sub-range. */
    @FunctionalInterface
    public interface Range {
        void run(int from, int to);
    }

    /**
     * How long an idle worker waits awake for the next call: longer than the gaps between the calls of one
     * token (decoding one token of paper-85m makes about 75 calls of 50–500 µs each).
     */
    static final long SPIN_NANOS = 200_000;

    /** Below this many multiply-adds a call runs serially: waking threads costs more than it saves. */
    static final long MIN_PARALLEL_WORK = 1L << 15;

    private static final Parallel SERIAL = new Parallel(Pool.serial());

    private final Pool pool;

    public Parallel(int threads) {
        this(new Pool(threads, SPIN_NANOS));
    }

    private Parallel(Pool pool) {
        this.pool = pool;
    }

    public static Parallel serial() {
        return SERIAL;
    }

    /** One thread per available processor. */
    public static Parallel ofAllCores() {
        return new Parallel(Pool.cores());
    }

    public int threads() {
        return pool.threads();
    }

    /**
     * Runs body over [0, n) in contiguous chunks, in parallel when there is enough work (work = n times the
     * cost of one row, in multiply-adds). One chunk per thread, not the pool's default of up to four: a decoded
     * token's weights come from memory (the LM head pushed them out of the caches since the last token), and a
     * thread that walks one contiguous range keeps the hardware prefetcher's stream, where one that hops between
     * chunks restarts it per chunk. paper-85m's four ternary GEMVs of a layer, weights cold, two threads: 53 µs in
     * eight chunks, 41 µs in two. A chunk no thread has claimed yet is still taken by whichever thread is free.
     */
    public void forRange(int n, long work, Range body) {
        if (n < 2 || work < MIN_PARALLEL_WORK) {
            body.run(0, n);
            return;
        }
        int threads = pool.threads();
        pool.forRange(n, (n + threads - 1) / threads, (worker, from, to) -> body.run(from, to));
    }

    @Override
    public void close() {
        pool.close();
    }
}
