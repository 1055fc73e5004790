package bitskip.bench;

import bitskip.engine.AdamStep;
import bitskip.engine.AttentionActs;
import bitskip.engine.AttentionShape;
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
 * present (java, the registered host backends, every OpenCL device and, in a JVM started with TornadoVM,
 * every TornadoVM device), one table, and one JSON line per
 * (commit, device, configuration) appended to the history file.
 *
 * <pre>
 *   java -cp ... bitskip.bench.Portability [--preset micro] [--batch 2] [--steps 3] [--gemm 256]
 *        [--only opencl] [--history benchmarks/results/perf-history.jsonl] [--commit SHA]
 * </pre>
 * Columns: GEMM GFLOP/s (matmulForward, n x n x n), FWHT GB/s (hBitLinearForward with OC = 1, full
 * precision: LayerNorm + pad + FWHT dominate; bytes = one read and one write of the N x P rows), GEMV GB/s
 * (matmulForward with one row: the weight matrix read once), LayerNorm GB/s (forward, 1024 rows of 768:
 * one read and one write), attention ms (forward and backward of one tiny-preset layer: B 2, T 128, NH 4,
 * NKV 2, HS 32), cross-entropy ms (rows of the LM-head chunk: 128 rows of V 50257 with the gradient), AdamW
 * GB/s (2^22 parameters: four arrays read, three written), ms per training step (forward, backward, AdamW)
 * and tokens/s, plus whether the step's loss matches the java reference (relative 1e-5).
 */
public final class Portability {
    private Portability() {}

    record Row(String label, String description, double gemmGflops, double fwhtGBs, double gemvGBs, double[] kernels,
               double msPerStep, double tokensPerSec, String stepCheck) {}

    /** The per-kernel columns after GEMM, FWHT and GEMV: name in the table, key in the history, unit. */
    static final String[][] KERNELS = {{"LN GB/s", "layernorm_gbs"}, {"attn ms", "attention_ms"},
            {"xent ms", "cross_entropy_ms"}, {"AdamW GB/s", "adamw_gbs"}};

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
                double[] kernels = {layerNormGBs(be, slow ? 128 : 1024, 768), attentionMs(be, slow ? 32 : 128),
                        crossEntropyMs(be, slow ? 8 : 128, 50257), adamWGBs(be, slow ? 1 << 18 : 1 << 22)};
                double[] step = trainStep(be, cfg, batch, steps);
                if (t.label().equals("java")) {
                    refLoss = step[2];
                }
                String check = Double.isNaN(refLoss) ? "-"
                        : Math.abs(step[2] - refLoss) <= 1e-5 * Math.abs(refLoss) ? "match" : "MISMATCH " + step[2];
                Row r = new Row(t.label(), be.description(), gf, fw, gv, kernels, step[0], step[1], check);
                rows.add(r);
                System.err.printf(Locale.ROOT, "%s: done%n", t.label());
                append(history, json(commit, r, preset, batch, n));
            } catch (RuntimeException e) {
                System.err.println(t.label() + ": " + e);
            }
        }
        System.out.printf(Locale.ROOT, "%nPortability (%s preset, batch %d, %d steps after 1 warm-up; commit %s)%n",
                preset, batch, steps, commit);
        StringBuilder head = new StringBuilder(String.format(Locale.ROOT, "%-18s %12s %10s %10s", "device",
                "GEMM GFLOP/s", "FWHT GB/s", "GEMV GB/s"));
        for (String[] k : KERNELS) {
            head.append(String.format(Locale.ROOT, " %10s", k[0]));
        }
        System.out.println(head + String.format(Locale.ROOT, " %12s %12s  %s", "ms/step", "tokens/s", "step vs java"));
        for (Row r : rows) {
            StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%-18s %12.2f %10.2f %10.2f", r.label(),
                    r.gemmGflops(), r.fwhtGBs(), r.gemvGBs()));
            for (double v : r.kernels()) {
                line.append(String.format(Locale.ROOT, " %10.2f", v));
            }
            System.out.println(line + String.format(Locale.ROOT, " %12.1f %12.0f  %s", r.msPerStep(), r.tokensPerSec(),
                    r.stepCheck()));
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

    static double layerNormGBs(Backend be, int N, int C) {
        Random r = new Random(4);
        Tensor inp = up(be, "inp", randn(N * C, r)), out = be.alloc("out", N * C);
        Norm norm = new Norm(up(be, "w", randn(C, r)), up(be, "b", randn(C, r)));
        NormStats stats = new NormStats(be.alloc("mean", N), be.alloc("rstd", N));
        double s = time(be, () -> be.layerNormForward(out, stats, inp, norm, N, C, 1e-5f));
        return 2.0 * 4 * N * C / s / 1e9;
    }

    /** Forward and backward of one attention layer (B 2, T, NH 4, NKV 2, HS 32), in ms. */
    static double attentionMs(Backend be, int T) {
        AttentionShape sh = new AttentionShape(2, T, 4, 2, 32);
        Random r = new Random(6);
        int q = (int) sh.queries().size(), kv = (int) sh.keys().size(), p = 2 * 4 * T * T;
        AttentionActs a = new AttentionActs(up(be, "q", randn(q, r)), up(be, "k", randn(kv, r)),
                up(be, "v", randn(kv, r)), be.alloc("probs", p), null, be.alloc("out", q));
        Tensor work = be.alloc("work", sh.workSize()), dout = up(be, "dout", randn(q, r));
        Tensor dq = be.alloc("dq", q), dk = be.alloc("dk", kv), dv = be.alloc("dv", kv);
        return 1000 * time(be, () -> {
            be.attentionForward(sh, a, work);
            be.attentionBackward(sh, a, dout, dq, dk, dv, work);
        });
    }

    /** Cross-entropy with the gradient over R rows of V logits, in ms (a repeat runs on the previous call's gradient in place of the logits: the same work). */
    static double crossEntropyMs(Backend be, int R, int V) {
        Random r = new Random(7);
        float[] x = randn(R * V, r);
        int[] targets = new int[R];
        for (int i = 0; i < R; i++) {
            targets[i] = r.nextInt(V);
        }
        Tensor logits = up(be, "logits", x);
        double[] loss = new double[R];
        return 1000 * time(be, () -> be.crossEntropy(logits, targets, R, V, 1.0f, true, loss));
    }

    static double adamWGBs(Backend be, int n) {
        Random r = new Random(8);
        Tensor p = up(be, "p", randn(n, r)), g = up(be, "g", randn(n, r)), m = be.alloc("m", n), v = be.alloc("v", n);
        AdamStep step = new AdamStep(1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 1);
        double s = time(be, () -> be.adamW(p, g, m, v, n, step));
        return 7.0 * 4 * n / s / 1e9;
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
        StringBuilder kernels = new StringBuilder();
        for (int i = 0; i < KERNELS.length; i++) {
            kernels.append(String.format(Locale.ROOT, "\"%s\":%.3f,", KERNELS[i][1], r.kernels()[i]));
        }
        return String.format(Locale.ROOT, "{\"time\":\"%s\",\"commit\":\"%s\",\"device\":\"%s\",\"description\":\"%s\","
                        + "\"config\":{\"preset\":\"%s\",\"batch\":%d,\"gemm_n\":%d},\"gemm_gflops\":%.3f,"
                        + "\"fwht_gbs\":%.3f,\"gemv_gbs\":%.3f,%s\"ms_per_step\":%.3f,\"tokens_per_s\":%.1f,"
                        + "\"step_vs_java\":\"%s\"}",
                Instant.now(), commit, esc(r.label()), esc(r.description()), preset, batch, gemm, r.gemmGflops(),
                r.fwhtGBs(), r.gemvGBs(), kernels, r.msPerStep(), r.tokensPerSec(), esc(r.stepCheck()));
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
