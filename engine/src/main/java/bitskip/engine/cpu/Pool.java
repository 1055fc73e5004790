package bitskip.engine.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A minimal fork-join for the CPU backend: {@link #forRange} splits [0, n) into at most {@code threads}
 * contiguous parts, runs part 0 on the calling thread and the others on long-lived daemon workers, and
 * returns when all are done. The split is a pure function of (n, parts), so the same thread count always
 * gives every part the same rows: reductions that each part performs over its own rows are deterministic.
 *
 * <p>Not reentrant: a body must not call forRange of the same pool. One caller at a time.
 */
final class Pool implements AutoCloseable {

    /** The work of one part: items [lo, hi) of the range, run by part number {@code part}. */
    @FunctionalInterface
    interface Body {
        void run(int part, int lo, int hi);
    }

    private final int threads;
    private final Worker[] workers;
    private final Thread caller[] = new Thread[1];
    private final AtomicInteger pending = new AtomicInteger();
    private volatile Body body;
    private volatile int n;
    private volatile int parts;
    private volatile Throwable failure;
    private volatile boolean closed;

    Pool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].thread.start();
        }
    }

    int threads() {
        return threads;
    }

    /** How many parts a range of n items gets when each part should hold at least minItems items. */
    int partsFor(int n, int minItems) {
        int p = Math.min(threads, Math.max(1, n / Math.max(1, minItems)));
        return Math.max(1, Math.min(p, Math.max(1, n)));
    }

    /** Runs body over [0, n) split into partsFor(n, minItems) parts. */
    void forRange(int n, int minItems, Body b) {
        if (n <= 0) {
            return;
        }
        int p = partsFor(n, minItems);
        if (p == 1) {
            b.run(0, 0, n);
            return;
        }
        this.body = b;
        this.n = n;
        this.parts = p;
        this.failure = null;
        caller[0] = Thread.currentThread();
        pending.set(p - 1);
        for (int i = 1; i < p; i++) {
            workers[i - 1].go();
        }
        Throwable mine = null;
        try {
            b.run(0, 0, lo(0, p, n));
        } catch (Throwable t) {
            mine = t;
        }
        int spins = 0;
        while (pending.get() != 0) {
            if (++spins < 2000) {
                Thread.onSpinWait();
            } else {
                LockSupport.parkNanos(this, 50_000L);
            }
        }
        this.body = null;
        Throwable f = mine != null ? mine : failure;
        if (f instanceof RuntimeException) {
            throw (RuntimeException) f;
        }
        if (f instanceof Error) {
            throw (Error) f;
        }
        if (f != null) {
            throw new RuntimeException(f);
        }
    }

    /** End of part i (exclusive) = start of part i+1: floor((i+1)·n/p). */
    private static int lo(int i, int p, int n) {
        return (int) ((long) (i + 1) * n / p);
    }

    private final class Worker implements Runnable {
        final int index;
        final Thread thread;
        volatile boolean ready;

        Worker(int index) {
            this.index = index;
            this.thread = new Thread(this, "bitskip-cpu-" + index);
            this.thread.setDaemon(true);
        }

        void go() {
            ready = true;
            LockSupport.unpark(thread);
        }

        @Override
        public void run() {
            while (!closed) {
                int spins = 0;
                while (!ready && !closed) {
                    if (++spins < 2000) {
                        Thread.onSpinWait();
                    } else {
                        LockSupport.park(this);
                    }
                }
                if (closed) {
                    return;
                }
                ready = false;
                int p = parts;
                int nn = n;
                try {
                    body.run(index, index == 0 ? 0 : lo(index - 1, p, nn), lo(index, p, nn));
                } catch (Throwable t) {
                    failure = t;
                } finally {
                    if (pending.decrementAndGet() == 0) {
                        LockSupport.unpark(caller[0]);
                    }
                }
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Worker w : workers) {
            LockSupport.unpark(w.thread);
        }
    }
}
