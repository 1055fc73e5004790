package bitskip.model.infer;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Splits a range of output rows over a fixed team of threads: the calling thread and {@code threads - 1}
 * workers. Each row is computed by exactly one thread with the same code whatever the split, so results
 * never depend on the thread count.
 *
 * <p>Why not a ForkJoinPool: decoding one token of {@code paper-85m} makes about 75 parallel calls of
 * 50–500 µs each, and waking a parked pool thread and waiting on a future cost tens of microseconds per
 * call: two threads decoded slower than one. Here the caller does a share of the work itself, and a worker
 * busy-waits for the next call for {@link #SPIN_NANOS} before it parks, so back-to-back calls find it awake.
 */
public final class Parallel {
    /** Runs body(from, to) over a sub-range. */
    @FunctionalInterface
    public interface Range {
        void run(int from, int to);
    }

    /** How long an idle worker waits awake for the next call: longer than the gaps between the calls of one token. */
    static final long SPIN_NANOS = 200_000;

    private static final Parallel SERIAL = new Parallel(1);

    private final int threads;
    private final Worker[] workers;
    /** Held by the thread dispatching a call; a second caller (or a nested call) runs serially instead. */
    private final AtomicBoolean busy = new AtomicBoolean();
    // the current call, published to the workers by the volatile write of epoch
    private Range job;
    private int jobN, jobParts;
    private volatile long epoch;
    private final AtomicInteger remaining = new AtomicInteger();
    private volatile Throwable failure;

    public Parallel(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
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
        if (workers.length == 0 || n < 2 || work < (1L << 15) || !busy.compareAndSet(false, true)) {
            body.run(0, n);
            return;
        }
        try {
            int parts = Math.min(n, threads);
            job = body;
            jobN = n;
            jobParts = parts;
            failure = null;
            // every worker reports back, also one without a part: the next call may not begin (and overwrite
            // the job) while any worker could still read this one
            remaining.set(workers.length);
            epoch = epoch + 1; // single writer (busy): publishes job, jobN, jobParts
            for (Worker w : workers) {
                w.wake();
            }
            Throwable mine = null;
            try {
                body.run(0, bound(n, 0, parts));
            } catch (Throwable t) {
                mine = t;
            }
            while (remaining.get() > 0) {
                Thread.onSpinWait();
            }
            job = null;
            Throwable t = mine != null ? mine : failure;
            if (t instanceof RuntimeException e) {
                throw e;
            } else if (t instanceof Error e) {
                throw e;
            } else if (t != null) {
                throw new IllegalStateException(t);
            }
        } finally {
            busy.set(false);
        }
    }

    private static int bound(int n, int part, int parts) {
        return (int) ((long) n * (part + 1) / parts);
    }

    private final class Worker extends Thread {
        private final int part;
        private volatile boolean parked;

        Worker(int part) {
            this.part = part;
            setDaemon(true);
            setName("bitskip-infer-" + part);
        }

        void wake() {
            if (parked) {
                LockSupport.unpark(this);
            }
        }

        @Override
        public void run() {
            long seen = 0;
            while (true) {
                long e;
                long spinUntil = System.nanoTime() + SPIN_NANOS;
                while ((e = epoch) == seen) {
                    if (System.nanoTime() - spinUntil > 0) {
                        parked = true; // then re-read epoch: a caller that bumped it before this saw parked = false
                        if (epoch == seen) {
                            LockSupport.park(this);
                        }
                        parked = false;
                        spinUntil = System.nanoTime() + SPIN_NANOS;
                    } else {
                        Thread.onSpinWait();
                    }
                }
                seen = e;
                int parts = jobParts;
                if (part < parts) {
                    try {
                        job.run(bound(jobN, part - 1, parts), bound(jobN, part, parts));
                    } catch (Throwable t) {
                        failure = t;
                    }
                }
                remaining.decrementAndGet();
            }
        }
    }
}
