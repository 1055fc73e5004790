package bitskip.bench;

/**
 * Another process's load for the contention benchmark ({@code benchmarks/contention.sh}): THREADS threads
 * doing dependent float arithmetic (no memory traffic, no sleeping) for SECONDS seconds.
 *
 * <pre>java -cp … bitskip.bench.CpuHog THREADS SECONDS</pre>
 */
public final class CpuHog {
    private CpuHog() {}

    static volatile float sink;

    public static void main(String[] args) throws InterruptedException {
        int threads = Integer.parseInt(args[0]);
        long until = System.nanoTime() + (long) (Double.parseDouble(args[1]) * 1e9);
        Thread[] ts = new Thread[threads];
        for (int i = 0; i < threads; i++) {
            ts[i] = new Thread(() -> {
                float x = 1.0f;
                while (System.nanoTime() < until) {
                    for (int k = 0; k < 1_000_000; k++) {
                        x = x * 1.0000001f + 1e-7f;
                    }
                    sink = x;
                }
            });
            ts[i].start();
        }
        for (Thread t : ts) {
            t.join();
        }
    }
}
