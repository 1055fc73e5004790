package bitskip.bench;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.engine.Gemm;
import bitskip.engine.Mat;
import bitskip.engine.Precision;
import bitskip.engine.Tensor;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Presets;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.openblas.global.openblas;
import org.bytedeco.openblas.global.openblas_full;

/**
 * One training head pass of a preset (N = batch × ctx rows against the V × C head) taken apart: for each chunk of
 * rows, the logits product, the cross-entropy rows, the dX product and the weight gradient's product, each timed
 * (the ops of {@code Backend.headLoss}, called one by one on the cpu backend), then OpenBLAS's own threads on the
 * same three shapes at one chunk, as the baseline the engine's blocks on its pool are held against, and one core's
 * share of a chunk with OpenBLAS and with oneDNN on one thread.
 *
 * <pre>java --add-modules jdk.incubator.vector -cp … bitskip.bench.HeadPassBench PRESET BATCH [CHUNK_ROWS] [fp32|bf16] [ROUNDS]</pre>
 */
public final class HeadPassBench {
    public static void main(String[] args) {
        String preset = args[0];
        int batch = Integer.parseInt(args[1]);
        BitSkipConfig c = Presets.build(preset, "paper", "bitskip");
        int N = batch * c.ctx(), C = c.dModel(), V = c.vocabSize();
        int R = Math.min(args.length > 2 ? Integer.parseInt(args[2]) : c.headChunk(), N);
        Precision precision = Precision.parse(args.length > 3 ? args[3] : "fp32");
        int rounds = args.length > 4 ? Integer.parseInt(args[4]) : 5;
        double flops = 2.0 * N * C * V;
        System.out.printf(Locale.ROOT, "%s head pass: N %d, C %d, V %d, chunks of %d rows, %s%n", preset, N, C, V, R, precision);
        try (Backend be = Backends.create("cpu")) {
            be.usePrecision(precision);
            Tensor x = be.alloc("x", N * C), w = be.alloc("w", V * C), dw = be.alloc("dw", V * C);
            Tensor logits = be.alloc("logits", R * V), dx = be.alloc("dx", N * C);
            Random r = new Random(1);
            be.upload(w, gaussian(r, V * C, 0.02f));
            be.upload(x, gaussian(r, N * C, 1.0f));
            int[] targets = new int[N];
            Arrays.setAll(targets, i -> r.nextInt(V));
            double[] rowLoss = new double[R];
            for (int round = 0; round < rounds; round++) {
                long tFwd = 0, tCe = 0, tDx = 0, tDw = 0;
                for (int r0 = 0; r0 < N; r0 += R) {
                    int rows = Math.min(R, N - r0);
                    Mat xs = new Mat(x, r0 * C, C, false);
                    long t0 = System.nanoTime();
                    be.gemm(new Gemm(rows, V, C, 1f, xs, Mat.transposeOf(w, C), 0f, Mat.of(logits, V), null));
                    long t1 = System.nanoTime();
                    be.crossEntropy(logits, Arrays.copyOfRange(targets, r0, r0 + rows), rows, V, 1f / N, true, rowLoss);
                    long t2 = System.nanoTime();
                    be.gemm(new Gemm(rows, C, V, 1f, Mat.of(logits, V), Mat.of(w, C), 1f, new Mat(dx, r0 * C, C, false), null));
                    long t3 = System.nanoTime();
                    be.gemm(new Gemm(V, C, rows, 1f, Mat.transposeOf(logits, V), xs, 1f, Mat.of(dw, C), null));
                    long t4 = System.nanoTime();
                    tFwd += t1 - t0;
                    tCe += t2 - t1;
                    tDx += t3 - t2;
                    tDw += t4 - t3;
                }
                long total = tFwd + tCe + tDx + tDw;
                System.out.printf(Locale.ROOT, "engine: logits %.0f GFLOP/s | cross-entropy %.1f ms | dX %.0f GFLOP/s | dW %.0f GFLOP/s"
                        + " | pass %.1f ms (%.0f GFLOP/s of its products)%n", flops / tFwd, tCe / 1e6, flops / tDx, flops / tDw,
                        total / 1e6, 3 * flops / total);
            }
        }
        if (precision == Precision.FP32) {
            openblasThreads(R, C, V, rounds);
            oneCore(R, C, V, rounds);
        }
    }

    /**
     * One core's share of the chunk's three products (half of V, as one of two threads gets it) on one thread,
     * OpenBLAS's sgemm against oneDNN's (dnnl_sgemm; OMP_NUM_THREADS=1 keeps it on one thread): what a single core
     * reaches at these shapes with either library, against the FMA units' rate ({@link FmaPeak}).
     */
    private static void oneCore(int R, int C, int V, int rounds) {
        openblas_full.openblas_set_num_threads(1);
        int Vh = V / 2;
        FloatPointer x = filled((long) R * C), w = filled((long) Vh * C), g = filled((long) R * Vh), dx = filled((long) R * C),
                dw = filled((long) Vh * C);
        double flops = 2.0 * R * C * Vh;
        byte n = 'N', t = 'T';
        for (int round = 0; round < rounds; round++) {
            long t0 = System.nanoTime();
            openblas.cblas_sgemm(openblas.CblasRowMajor, openblas.CblasNoTrans, openblas.CblasTrans, R, Vh, C, 1f, x, C, w, C, 0f, g, Vh);
            long t1 = System.nanoTime();
            dnnl.dnnl_sgemm(n, t, R, Vh, C, 1f, x, C, w, C, 0f, g, Vh);
            long t2 = System.nanoTime();
            openblas.cblas_sgemm(openblas.CblasRowMajor, openblas.CblasNoTrans, openblas.CblasNoTrans, R, C, Vh, 1f, g, Vh, w, C, 1f, dx, C);
            long t3 = System.nanoTime();
            dnnl.dnnl_sgemm(n, n, R, C, Vh, 1f, g, Vh, w, C, 1f, dx, C);
            long t4 = System.nanoTime();
            openblas.cblas_sgemm(openblas.CblasRowMajor, openblas.CblasTrans, openblas.CblasNoTrans, Vh, C, R, 1f, g, Vh, x, C, 1f, dw, C);
            long t5 = System.nanoTime();
            dnnl.dnnl_sgemm(t, n, Vh, C, R, 1f, g, Vh, x, C, 1f, dw, C);
            long t6 = System.nanoTime();
            System.out.printf(Locale.ROOT, "one core, half of V: logits OpenBLAS %.0f / oneDNN %.0f GFLOP/s | dX %.0f / %.0f | dW %.0f / %.0f%n",
                    flops / (t1 - t0), flops / (t2 - t1), flops / (t3 - t2), flops / (t4 - t3), flops / (t5 - t4), flops / (t6 - t5));
        }
    }

    /** The three products of one chunk of R rows with OpenBLAS's own threads (as many as the cpu backend's). */
    private static void openblasThreads(int R, int C, int V, int rounds) {
        int threads = Integer.getInteger("bitskip.threads", Runtime.getRuntime().availableProcessors());
        openblas_full.openblas_set_num_threads(threads);
        FloatPointer x = filled((long) R * C), w = filled((long) V * C), g = filled((long) R * V), dx = filled((long) R * C),
                dw = filled((long) V * C);
        double flops = 2.0 * R * C * V;
        for (int round = 0; round < rounds; round++) {
            long t0 = System.nanoTime();
            openblas.cblas_sgemm(openblas.CblasRowMajor, openblas.CblasNoTrans, openblas.CblasTrans, R, V, C, 1f, x, C, w, C, 0f, g, V);
            long t1 = System.nanoTime();
            openblas.cblas_sgemm(openblas.CblasRowMajor, openblas.CblasNoTrans, openblas.CblasNoTrans, R, C, V, 1f, g, V, w, C, 1f, dx, C);
            long t2 = System.nanoTime();
            openblas.cblas_sgemm(openblas.CblasRowMajor, openblas.CblasTrans, openblas.CblasNoTrans, V, C, R, 1f, g, V, x, C, 1f, dw, C);
            long t3 = System.nanoTime();
            System.out.printf(Locale.ROOT, "OpenBLAS, %d threads, one chunk: logits %.0f GFLOP/s | dX %.0f GFLOP/s | dW %.0f GFLOP/s%n",
                    threads, flops / (t1 - t0), flops / (t2 - t1), flops / (t3 - t2));
        }
    }

    private static float[] gaussian(Random r, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian() * scale;
        }
        return a;
    }

    private static FloatPointer filled(long n) {
        FloatPointer p = new FloatPointer(n);
        Random r = new Random(2);
        for (long i = 0; i < n; i++) {
            p.put(i, (float) r.nextGaussian() * 0.1f);
        }
        return p;
    }
}
