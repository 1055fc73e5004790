package bitskip.bench;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.train.Optimizer;
import bitskip.model.train.Randomness;
import java.nio.file.Files;
import java.nio.file.Path;
import bitskip.engine.cpu.CpuBackend;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Whole-step training throughput: one JVM per (preset, variant, batch) so peak RSS belongs to that
 * configuration alone. Times full optimizer steps (forward, backward, clip, AdamW) on random tokens after
 * warm-up (-Dbitskip.bench.warmup, default 2 steps) and prints the median tokens/s and the process's peak RSS (VmHWM) as one JSON line.
 * -Dbitskip.bench.precision=bf16 runs the products in bf16 ({@code precision}, the cpu backend).
 *
 * <pre>java --add-modules jdk.incubator.vector -cp … bitskip.bench.TrainStepBench PRESET VARIANT BATCH [STEPS] [BACKEND]</pre>
 */
public final class TrainStepBench {
    public static void main(String[] args) throws Exception {
        String preset = args[0], variant = args[1];
        int batch = Integer.parseInt(args[2]);
        int steps = args.length > 3 ? Integer.parseInt(args[3]) : 5;
        String backend = args.length > 4 ? args[4] : null;
        int warmup = Integer.getInteger("bitskip.bench.warmup", 2); // steps of minutes (paper-85m) need only one
        String precision = System.getProperty("bitskip.bench.precision", "fp32");
        BitSkipConfig c = Configs.override(Presets.build(preset, "paper", variant),
                Map.of("batch", Integer.toString(batch), "accum", "1", "precision", precision), "bench");
        int N = batch * c.ctx();
        Random r = new Random(1);
        int[] x = new int[N], y = new int[N];
        for (int i = 0; i < N; i++) {
            x[i] = r.nextInt(c.vocabSize());
            y[i] = r.nextInt(c.vocabSize());
        }
        try (Backend be = Backends.create(backend)) {
            be.usePrecision(bitskip.engine.Precision.parse(c.precision()));
            BitSkipModel m = new BitSkipModel(c, be, batch);
            m.initialize(1);
            double[] secs = new double[steps];
            for (int s = 0; s < warmup + steps; s++) {
                long t0 = System.nanoTime();
                m.zeroGrads();
                m.trainStep(x, y, batch, Randomness.skipMask(c, 7, s, 0, batch), Randomness.dropoutSeed(7, s, 0), 1.0f);
                Optimizer.step(m, 1e-4f, s + 1);
                be.sync();
                if (s >= warmup) {
                    secs[s - warmup] = (System.nanoTime() - t0) / 1e9;
                }
            }
            Arrays.sort(secs);
            double median = secs[steps / 2];
            System.out.printf(Locale.ROOT,
                    "{\"impl\":\"bitskip-%s-%s\",\"preset\":\"%s\",\"variant\":\"%s\",\"batch\":%d,\"ctx\":%d,\"threads\":%d,"
                            + "\"steps\":%d,\"median_step_s\":%.4f,\"tokens_per_s\":%.1f,\"peak_rss_mb\":%d}%n",
                    be.name(), be.precision(), preset, variant, batch, c.ctx(), be instanceof CpuBackend cpu ? cpu.threads() : 1, steps, median,
                    N / median, peakRssMb());
        }
    }

    /** The process's peak resident set size (VmHWM of /proc/self/status), in MiB; -1 where unknown. */
    static long peakRssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
                }
            }
        } catch (Exception e) {
            // not Linux
        }
        return -1;
    }
}
