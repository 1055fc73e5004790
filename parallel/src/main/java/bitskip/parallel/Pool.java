package bitskip.parallel;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * The one thread pool of the CPU paths: training (the cpu backend's non-GEMM ops) and inference (the packed
 * GEMV). {@link #forRange} splits [0, n) into chunks, runs them on the calling thread and on long-lived
 * daemon workers, and returns when every chunk is done.
 *
 * <p><b>Deterministic results.</b> Chunk boundaries are a pure function of (n, grain, threads), and a body
 * must compute each item the same way whichever chunk or thread it lands in (every caller's bodies do: rows,
 * columns, fixed blocks), so results do not depend on which thread ran what. {@code worker} (0 for the
 * caller, 1..threads−1 for the workers) only indexes per-thread scratch.
 *
 * <p><b>Under contention.</b> Chunks are claimed from a shared counter rather than assigned, up to
 * {@link #CHUNKS_PER_THREAD} per thread: a thread the OS has descheduled (another process holds the core)
 * leaves its chunks to the others instead of making every call wait for it, so the run degrades to its fair
 * share of the cores instead of to the pace of its slowest thread. Idle workers spin a while (50 µs by
 * default; back-to-back calls, as decoding makes, find them awake), then park, so an idle pool
 * takes no CPU from other processes or from OpenBLAS's threads; a caller waiting for the last chunks spins
 * as long, then parks until the last chunk's thread wakes it.
 *
 * <p>Only as many workers are woken as there are chunks beyond the caller's. Threads never exceed the
 * processors the JVM sees. A call from inside a body, or from a second thread while one runs, runs serially
 * on its own thread (with worker 0). After {@link #close} every call fails.
 */
public final class Pool implements AutoCloseable {

    /** The work of one chunk: items [lo, hi), run by thread {@code worker}. */
    @FunctionalInterface
    public interface Body {
        void run(int worker, int lo, int hi);
    }

    /** The default of how long an idle thread waits awake before it parks: {@code -Dbitskip.pool.spinMicros}, 50. */
    static final long SPIN_NANOS = Long.getLong("bitskip.pool.spinMicros", 50L) * 1000L;
    /** Chunks per thread at most: enough for the others to take over a descheduled thread's share. */
    static final int CHUNKS_PER_THREAD = 4;

    private static final Pool SERIAL = new Pool(1, 0, true);

    private final int threads;
    private final long spinNanos;
    private final Worker[] workers;
    private final boolean shared;
    private final AtomicBoolean busy = new AtomicBoolean();
    private volatile boolean closed;

    /** A pool of min(threads, available processors) threads: the caller and threads − 1 workers. */
    public Pool(int threads) {
        this(threads, SPIN_NANOS, false);
    }

    /**
     * A pool whose idle threads wait awake spinNanos before they park: longer where calls come back to back
     * and each is short (decoding), shorter where the cores are needed in between (training's GEMMs).
     */
    public Pool(int threads, long spinNanos) {
        this(threads, spinNanos, false);
    }

    private Pool(int threads, long spinNanos, boolean shared) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        if (spinNanos < 0) {
            throw new IllegalArgumentException("spinNanos must be >= 0, got " + spinNanos);
        }
        this.threads = Math.min(threads, cores());
        this.spinNanos = spinNanos;
        this.shared = shared;
        this.workers = new Worker[this.threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
    }

    /** The processors the JVM sees (its container's share where it runs in one). */
    public static int cores() {
        return Runtime.getRuntime().availableProcessors();
    }

    /** A one-thread pool shared by everyone that runs serially (closing it does nothing). */
    public static Pool serial() {
        return SERIAL;
    }

    public int threads() {
        return threads;
    }

    /** How long an idle thread of this pool waits awake before it parks. */
    public long spinNanos() {
        return spinNanos;
    }

    /** The chunks a range of n items gets when each should hold at least grain items. */
    int chunksFor(int n, int grain) {
        long byGrain = (n + (long) Math.max(1, grain) - 1) / Math.max(1, grain);
        return (int) Math.max(1, Math.min(byGrain, (long) threads * CHUNKS_PER_THREAD));
    }

    /** Runs body over [0, n) in chunks of at least grain items (fewer when n is small). */
    public void forRange(int n, int grain, Body body) {
        if (closed) {
            throw new IllegalStateException("thread pool closed: no more work can run on it");
        }
        if (n <= 0) {
            return;
        }
        int chunks = chunksFor(n, grain);
        if (chunks == 1 || workers.length == 0 || !busy.compareAndSet(false, true)) {
            body.run(0, 0, n);
            return;
        }
        try {
            Job job = new Job(body, n, chunks, Thread.currentThread(), spinNanos);
            int helpers = Math.min(chunks, threads) - 1;
            for (int i = 0; i < helpers; i++) {
                workers[i].hand(job);
            }
            job.work(0);
            job.awaitDone();
            job.rethrow();
        } finally {
            busy.set(false);
        }
    }

    /** Stops the workers; later calls fail. The shared serial pool ignores it. */
    @Override
    public void close() {
        if (shared) {
            return;
        }
        closed = true;
        for (Worker w : workers) {
            LockSupport.unpark(w);
        }
    }

    /** One call: its chunks, claimed in order from {@link #next}, and how many are done. */
    private static final class Job {
        final Body body;
        final int n, chunks;
        final Thread caller;
        final long spinNanos;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger done = new AtomicInteger();
        volatile boolean callerParked;
        volatile Throwable failure;

        Job(Body body, int n, int chunks, Thread caller, long spinNanos) {
            this.body = body;
            this.n = n;
            this.chunks = chunks;
            this.caller = caller;
            this.spinNanos = spinNanos;
        }

        /** Start of chunk c: floor(c·n / chunks). */
        int bound(int c) {
            return (int) ((long) c * n / chunks);
        }

        /** Claims and runs chunks until none is left. A thread arriving after the last claim runs nothing. */
        void work(int worker) {
            int c;
            while ((c = next.getAndIncrement()) < chunks) {
                try {
                    body.run(worker, bound(c), bound(c + 1));
                } catch (Throwable t) {
                    if (failure == null) {
                        failure = t;
                    }
                }
                if (done.incrementAndGet() == chunks && callerParked) {
                    LockSupport.unpark(caller);
                }
            }
        }

        void awaitDone() {
            long spinUntil = System.nanoTime() + spinNanos;
            while (done.get() < chunks) {
                if (System.nanoTime() - spinUntil < 0) {
                    Thread.onSpinWait();
                } else {
                    callerParked = true; // then re-read done: a last chunk finished before this saw it false
                    if (done.get() < chunks) {
                        LockSupport.parkNanos(this, 1_000_000L);
                    }
                }
            }
        }

        void rethrow() {
            Throwable t = failure;
            if (t instanceof RuntimeException e) {
                throw e;
            } else if (t instanceof Error e) {
                throw e;
            } else if (t != null) {
                throw new IllegalStateException(t);
            }
        }
    }

    private final class Worker extends Thread {
        private final int index;
        private volatile Job job;
        private volatile boolean parked;
        private Job last;

        Worker(int index) {
            this.index = index;
            setDaemon(true);
            setName("bitskip-pool-" + index);
        }

        void hand(Job j) {
            job = j;
            if (parked) {
                LockSupport.unpark(this);
            }
        }

        @Override
        public void run() {
            Job j;
            while ((j = next()) != null) {
                last = j;
                j.work(index);
            }
        }

        /** The next job handed to this worker: spins a while, then parks; null once the pool is closed. */
        private Job next() {
            long spinUntil = System.nanoTime() + spinNanos;
            while (true) {
                Job j = job;
                if (j != last) {
                    return j;
                }
                if (closed) {
                    return null;
                }
                if (System.nanoTime() - spinUntil < 0) {
                    Thread.onSpinWait();
                } else {
                    parked = true; // then re-read job: a caller that handed one before this saw parked false
                    if (job == last && !closed) {
                        LockSupport.park(this);
                    }
                    parked = false;
                }
            }
        }
    }
}
