package bitskip.bench;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.engine.LinearActs;
import bitskip.engine.LinearParams;
import bitskip.engine.Norm;
import bitskip.engine.NormStats;
import bitskip.engine.QuantLinear;
import bitskip.engine.Target;
import bitskip.engine.Tensor;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Presets;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Losses;
import bitskip.model.train.Optimizer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * The portability benchmark: the same kernels and a whole training step on every backend and device
 * present (java, the registered host backends, every OpenCL device), one table, and one JSON line per
 * (commit, device, configuration) appended to the history file.
 *
 * <pre>
 *   java -cp ... bitskip.bench.Portability [--preset micro] [--batch 2] [--steps 3] [--gemm 256]
 *        [--only opencl] [--history benchmarks/results/perf-history.jsonl] [--commit SHA]
 * </pre>
 * Columns: GEMM GFLOP/s (matmulForward, n x n x n), FWHT GB/s (hBitLinearForward with OC = 1, full
 * precision: LayerNorm + pad + FWHT dominate; bytes = one read and one write of the N x P rows), GEMV GB/s
 * (matmulForward with one row: the weight matrix read once), ms per training step (forward, backward,
 * AdamW) and tokens/s, plus whether the step's loss matches the java reference (relative 1e-5).
 */
public final class Portability {
    private Portability() {}

    record Row(String label, String description, double gemmGflops, double fwhtGBs, double gemvGBs, double msPerStep,
               double tokensPerSec, String stepCheck) {}

    public static void main(String[] args) throws IOException {
        String preset = "micro", only = null, history = "benchmarks/results/perf-history.jsonl", commit = null;
        int batch = 2, steps = 3, gemm = 256;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--preset" -> preset = args[++i];
                case "--batch" -> batch = Integer.parseInt(args[++i]);
                case "--steps" -> steps = Integer.parseInt(args[++i]);
                case "--gemm" -> gemm = Integer.parseInt(args[++i]);
                case "--only" -> only = args[++i];
                case "--history" -> history = args[++i];
                case "--commit" -> commit = args[++i];
                default -> throw new IllegalArgumentException("unknown argument " + args[i]
                        + " (--preset --batch --steps --gemm --only --history --commit)");
            }
        }
        if (commit == null) {
            commit = commit();
        }
        BitSkipConfig cfg = Presets.build(preset, "paper", "bitskip");
        double refLoss = Double.NaN;
        List<Row> rows = new ArrayList<>();
        for (Target t : Backends.targets()) {
            if (!t.present() || t.label().endsWith("fp32")) {
                continue; // float-only kernels are a test configuration, not a device
            }
            if (only != null && !t.label().startsWith(only) && !t.label().equals("java")) {
                continue;
            }
            try (Backend be = t.open().get()) {
                boolean slow = t.label().equals("java");
                int n = slow ? Math.min(gemm, 128) : gemm;
                double gf = gemmGflops(be, n);
                double fw = fwhtGBs(be, slow ? 64 : 1024, 768);
                double gv = gemvGBs(be, slow ? 512 : 4096);
                double[] step = trainStep(be, cfg, batch, steps);
                if (t.label().equals("java")) {
                    refLoss = step[2];
                }
                String check = Double.isNaN(refLoss) ? "-"
                        : Math.abs(step[2] - refLoss) <= 1e-5 * Math.abs(refLoss) ? "match" : "MISMATCH " + step[2];
                Row r = new Row(t.label(), be.description(), gf, fw, gv, step[0], step[1], check);
                rows.add(r);
                System.err.printf(Locale.ROOT, "%s: done%n", t.label());
                append(history, json(commit, r, preset, batch, n));
            } catch (RuntimeException e) {
                System.err.println(t.label() + ": " + e);
            }
        }
        System.out.printf(Locale.ROOT, "%nPortability (%s preset, batch %d, %d steps after 1 warm-up; commit %s)%n",
                preset, batch, steps, commit);
        System.out.printf(Locale.ROOT, "%-18s %12s %10s %10s %12s %12s  %s%n", "device", "GEMM GFLOP/s", "FWHT GB/s",
                "GEMV GB/s", "ms/step", "tokens/s", "step vs java");
        for (Row r : rows) {
            System.out.printf(Locale.ROOT, "%-18s %12.2f %10.2f %10.2f %12.1f %12.0f  %s%n", r.label(), r.gemmGflops(),
                    r.fwhtGBs(), r.gemvGBs(), r.msPerStep(), r.tokensPerSec(), r.stepCheck());
        }
        for (Row r : rows) {
            System.out.println("  " + r.label() + " = " + r.description());
        }
    }

    private static float[] randn(int n, Random r) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    private static Tensor up(Backend be, String name, float[] a) {
        Tensor t = be.alloc(name, a.length);
        be.upload(t, a);
        return t;
    }

    /** Seconds per call: one warm-up, then repeats until 0.3 s or 20 calls. */
    private static double time(Backend be, Runnable op) {
        op.run();
        be.sync();
        int reps = 0;
        long t0 = System.nanoTime();
        do {
            op.run();
            reps++;
            be.sync();
        } while (System.nanoTime() - t0 < 300_000_000L && reps < 20);
        return (System.nanoTime() - t0) / 1e9 / reps;
    }

    static double gemmGflops(Backend be, int n) {
        Random r = new Random(1);
        Tensor a = up(be, "a", randn(n * n, r)), w = up(be, "w", randn(n * n, r)), out = be.alloc("out", n * n);
        double s = time(be, () -> be.matmulForward(out, a, w, null, n, n, n));
        return 2.0 * n * n * n / s / 1e9;
    }

    static double fwhtGBs(Backend be, int N, int C) {
        int P = Integer.highestOneBit(C - 1) << 1;
        Random r = new Random(2);
        Tensor inp = up(be, "inp", randn(N * C, r)), lw = up(be, "lw", randn(C, r)), lb = up(be, "lb", randn(C, r));
        Tensor w = up(be, "w", randn(P, r)), out = be.alloc("out", N), z = be.alloc("z", N * P);
        Tensor lo = be.alloc("lo", N * C);
        NormStats ln = new NormStats(be.alloc("lm", N), be.alloc("lr", N));
        QuantLinear q = QuantLinear.hadamard(C, 1, 1e-5f, 0, false, false);
        LinearParams p = new LinearParams(w, new Norm(lw, lb));
        LinearActs acts = new LinearActs(inp, out, null, null, null, null, z, lo, ln);
        double s = time(be, () -> be.hBitLinearForward(q, N, p, acts));
        return 2.0 * 4 * N * P / s / 1e9;
    }

    static double gemvGBs(Backend be, int n) {
        Random r = new Random(3);
        Tensor x = up(be, "x", randn(n, r)), w = up(be, "w", randn(n * n, r)), out = be.alloc("out", n);
        double s = time(be, () -> be.matmulForward(out, x, w, null, 1, n, n));
        return 4.0 * n * n / s / 1e9;
    }

    /** {ms per step, tokens per second, the first step's total loss}. */
    static double[] trainStep(Backend be, BitSkipConfig c, int B, int steps) {
        BitSkipModel m = new BitSkipModel(c, be, B);
        m.initialize(7);
        int N = B * c.ctx();
        Random r = new Random(5);
        int[] x = new int[N], y = new int[N];
        for (int i = 0; i < N; i++) {
            x[i] = r.nextInt(c.vocabSize());
            y[i] = r.nextInt(c.vocabSize());
        }
        m.zeroGrads();
        Losses first = m.trainStep(x, y, B, null, 1L, 1.0f);
        Optimizer.step(m, 1e-3f, 1);
        be.sync();
        long t0 = System.nanoTime();
        for (int s = 0; s < steps; s++) {
            m.zeroGrads();
            m.trainStep(x, y, B, null, 2L + s, 1.0f);
            Optimizer.step(m, 1e-3f, 2 + s);
        }
        be.sync();
        double sec = (System.nanoTime() - t0) / 1e9 / steps;
        return new double[] {sec * 1000, N / sec, first.total()};
    }

    static String json(String commit, Row r, String preset, int batch, int gemm) {
        return String.format(Locale.ROOT, "{\"time\":\"%s\",\"commit\":\"%s\",\"device\":\"%s\",\"description\":\"%s\","
                        + "\"config\":{\"preset\":\"%s\",\"batch\":%d,\"gemm_n\":%d},\"gemm_gflops\":%.3f,"
                        + "\"fwht_gbs\":%.3f,\"gemv_gbs\":%.3f,\"ms_per_step\":%.3f,\"tokens_per_s\":%.1f,"
                        + "\"step_vs_java\":\"%s\"}",
                Instant.now(), commit, esc(r.label()), esc(r.description()), preset, batch, gemm, r.gemmGflops(),
                r.fwhtGBs(), r.gemvGBs(), r.msPerStep(), r.tokensPerSec(), esc(r.stepCheck()));
    }

    private static String esc(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"");
    }

    private static void append(String file, String line) throws IOException {
        Path p = Path.of(file);
        if (p.getParent() != null) {
            Files.createDirectories(p.getParent());
        }
        Files.writeString(p, line + System.lineSeparator(), StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND);
    }

    private static String commit() {
        String env = System.getenv("BITSKIP_COMMIT");
        if (env != null && !env.isBlank()) {
            return env.trim();
        }
        try {
            Process p = new ProcessBuilder("git", "rev-parse", "--short", "HEAD").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            return p.waitFor() == 0 && !out.isEmpty() ? out : "unknown";
        } catch (IOException | InterruptedException e) {
            return "unknown";
        }
    }
}
