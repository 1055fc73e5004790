package bitskip.bench;

import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float32 rate of the FMA units: each thread runs twelve independent chains of fused multiply-adds on the
 * widest float vectors (enough chains to cover the FMA latency times the number of FMA pipes of current x86
 * cores), nothing loaded or stored. No GEMM can run faster than this; it is the yardstick for "the sgemm peak" that
 * the training comparison measures at the LM head's shape.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp … bitskip.bench.FmaPeak [THREADS] [ROUNDS]</pre>
 */
public final class FmaPeak {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int CHAINS = 12;

    public static void main(String[] args) throws InterruptedException {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        long iterations = 200_000_000L;
        double flopsPerThread = 2.0 * iterations * CHAINS * S.length();
        float warm = 0; // compiled before the first timed round (otherwise rounds run interpreted until OSR)
        for (int i = 0; i < 2_000; i++) {
            warm += chains(20_000, i);
        }
        System.out.printf(Locale.ROOT, "warm-up done (%.3f)%n", warm);
        for (int round = 0; round < rounds; round++) {
            Thread[] workers = new Thread[threads];
            float[] sink = new float[threads];
            long t0 = System.nanoTime();
            for (int k = 0; k < threads; k++) {
                int kk = k;
                workers[k] = new Thread(() -> sink[kk] = chains(iterations, kk));
                workers[k].start();
            }
            for (Thread t : workers) {
                t.join();
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf(Locale.ROOT, "%d thread%s, %d-bit FMAs: %.1f GFLOP/s (result %.3f)%n", threads,
                    threads == 1 ? "" : "s", S.vectorBitSize(), threads * flopsPerThread / seconds / 1e9, sink[0]);
        }
    }

    /** Twelve independent chains a = a·m + c, written out so that each is its own register. */
    private static float chains(long iterations, float seed) {
        FloatVector m = FloatVector.broadcast(S, 0.999999f), c = FloatVector.broadcast(S, 1e-7f);
        FloatVector a0 = FloatVector.broadcast(S, seed), a1 = a0.add(1), a2 = a0.add(2), a3 = a0.add(3), a4 = a0.add(4);
        FloatVector a5 = a0.add(5), a6 = a0.add(6), a7 = a0.add(7), a8 = a0.add(8), a9 = a0.add(9), a10 = a0.add(10);
        FloatVector a11 = a0.add(11);
        for (long i = 0; i < iterations; i++) {
            a0 = a0.fma(m, c);
            a1 = a1.fma(m, c);
            a2 = a2.fma(m, c);
            a3 = a3.fma(m, c);
            a4 = a4.fma(m, c);
            a5 = a5.fma(m, c);
            a6 = a6.fma(m, c);
            a7 = a7.fma(m, c);
            a8 = a8.fma(m, c);
            a9 = a9.fma(m, c);
            a10 = a10.fma(m, c);
            a11 = a11.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .reduceLanes(VectorOperators.ADD);
    }
}
