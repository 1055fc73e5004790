package bitskip.model.infer;

import bitskip.kernels.TernaryPack;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import java.nio.file.Path;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Inference benchmarks, printed as one line each (run with {@code --add-modules jdk.incubator.vector}):
 * <ol>
 *   <li>{@code copy}: STREAM-style copy bandwidth (read + write bytes) with all threads, best of 5;</li>
 *   <li>{@code gemv}: the packed ternary GEMV (int8 × i2_g128) on a matrix far larger than the caches,
 *       in GB/s of packed weights (best of 20 calls after 40 of warm-up), and its ratio to the copy
 *       bandwidth measured in the same run;</li>
 *   <li>{@code decode}: single-stream prefill and decode tokens/s of random-initialized presets after a
 *       warm-up run (weights random: the speed does not depend on them);</li>
 *   <li>{@code sweep} (with {@code --model FILE}, a deployed trained model): exit layer × drafts, tokens/s,
 *       acceptance and agreement with the full model, the autoregressive baseline measured in the same run.</li>
 * </ol>
 * Arguments: {@code [--presets tiny,small,paper-85m] [--tokens N] [--gemv-rows R --gemv-cols C]
 * [--model FILE --prompt-ids 1,2,3] [--threads T]}.
 */
public final class InferenceBench {
    private InferenceBench() {}

    public static void main(String[] args) throws Exception {
        String presets = "tiny,small";
        int tokens = 64, rows = 16384, cols = 16384, threads = Runtime.getRuntime().availableProcessors();
        Path model = null;
        String promptIds = null;
        boolean skipMemory = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--presets" -> presets = args[++i];
                case "--tokens" -> tokens = Integer.parseInt(args[++i]);
                case "--gemv-rows" -> rows = Integer.parseInt(args[++i]);
                case "--gemv-cols" -> cols = Integer.parseInt(args[++i]);
                case "--model" -> model = Path.of(args[++i]);
                case "--prompt-ids" -> promptIds = args[++i];
                case "--threads" -> threads = Integer.parseInt(args[++i]);
                case "--no-memory" -> skipMemory = true;
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        Parallel par = new Parallel(threads);
        System.out.printf(Locale.ROOT, "machine: %d cores, %s, threads %d%n", Runtime.getRuntime().availableProcessors(),
                System.getProperty("java.vm.name") + " " + System.getProperty("java.version"), threads);
        if (!skipMemory) {
            double copy = copyBandwidth(par);
            double read = readBandwidth(par);
            double gemv = gemvBandwidth(rows, cols, par);
            System.out.printf(Locale.ROOT, "gemv: %dx%d packed i2_g128 (%.1f MB): %.2f GB/s = %.0f%% of the copy bandwidth, %.0f%% of the read bandwidth%n",
                    rows, cols, rows * (double) TernaryPack.i2RowBytes(cols) / 1e6, gemv, 100 * gemv / copy, 100 * gemv / read);
        }
        if (!presets.isEmpty()) {
            for (String p : presets.split(",")) {
                decode(p, tokens, par);
            }
        }
        if (model != null) {
            sweep(DeployFile.read(model, par), promptIds, tokens);
        }
    }

    /** The best rate in GB/s of op moving bytes per call, over calls [warmup, calls). */
    static double bestGBs(int calls, int warmup, double bytes, Runnable op) {
        double best = 0;
        for (int rep = 0; rep < calls; rep++) {
            long t0 = System.nanoTime();
            op.run();
            double s = (System.nanoTime() - t0) / 1e9;
            if (rep >= warmup) {
                best = Math.max(best, bytes / s / 1e9);
            }
        }
        return best;
    }

    /** Start of slice part of [0, n) cut into 64 equal slices (the unit both bandwidth tests split over threads). */
    private static int slice(int n, int part) {
        return (int) ((long) n * part / 64);
    }

    /** Best of 5 copies of a 2 × 256 MB float array with all threads, in GB/s of read + written bytes. */
    static double copyBandwidth(Parallel par) {
        int n = 64 << 20;
        float[] a = new float[n], b = new float[n];
        par.forRange(n, Long.MAX_VALUE, (f, t) -> java.util.Arrays.fill(a, f, t, 1.0f));
        double best = bestGBs(6, 1, 2.0 * 4 * n, () -> par.forRange(64, Long.MAX_VALUE,
                (f, t) -> System.arraycopy(a, slice(n, f), b, slice(n, f), slice(n, t) - slice(n, f))));
        System.out.printf(Locale.ROOT, "copy: %.2f GB/s (read + write, %d MB arrays, best of 5)%n", best, 4 * n >> 20);
        return best;
    }

    /**
     * Best of 5 sums of a 512 MB float array with all threads, in GB/s: the read-only traffic a GEMV makes
     * (the copy figure counts a write for every read, as STREAM does).
     */
    static double readBandwidth(Parallel par) {
        int n = 128 << 20;
        float[] a = new float[n];
        par.forRange(n, Long.MAX_VALUE, (f, t) -> java.util.Arrays.fill(a, f, t, 1.0f));
        double[] sums = new double[64];
        double best = bestGBs(6, 1, 4.0 * n, () -> par.forRange(64, Long.MAX_VALUE, (f, t) -> {
            for (int part = f; part < t; part++) {
                int lo = slice(n, part), hi = slice(n, part + 1);
                FloatVector acc = FloatVector.zero(FloatVector.SPECIES_PREFERRED);
                int L = FloatVector.SPECIES_PREFERRED.length(), c = lo;
                for (; c + L <= hi; c += L) {
                    acc = acc.add(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, a, c));
                }
                sums[part] = acc.reduceLanes(VectorOperators.ADD);
            }
        }));
        double check = 0;
        for (double x : sums) {
            check += x;
        }
        if (check != n) { // also keeps the sums alive
            throw new IllegalStateException("read benchmark summed " + check + ", expected " + n);
        }
        System.out.printf(Locale.ROOT, "read: %.2f GB/s (sum of a %d MB array, best of 5)%n", best, 4 * n >> 20);
        return best;
    }

    static double gemvBandwidth(int OC, int C, Parallel par) {
        int rb = TernaryPack.i2RowBytes(C), Cp = TernaryPack.i2PaddedCols(C);
        byte[] packed = new byte[OC * rb];
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < packed.length; i++) {
            int b = 0;
            for (int k = 0; k < 4; k++) {
                b |= (r.nextInt(3) == 0 ? 0 : r.nextBoolean() ? 1 : 3) << (2 * k); // valid fields only
            }
            packed[i] = (byte) b;
        }
        short[] q = new short[Cp];
        for (int i = 0; i < C; i++) {
            q[i] = (short) (r.nextInt(255) - 127);
        }
        int[] acc = new int[OC];
        // 40 calls of warm-up: timing every call shows the JIT's final code arriving only after 15–20 calls
        // (2 threads: ~10–13 GB/s before, ~28 after)
        return bestGBs(60, 40, packed.length, () -> PackedGemm.ternary(acc, q, packed, 1, Cp, OC, par));
    }

    /** A random-initialized model of a preset (bitskip variant, paper profile). */
    static InferenceModel randomModel(String preset, Parallel par) {
        BitSkipConfig c = Presets.build(preset, "paper", "bitskip");
        SplittableRandom r = new SplittableRandom(7);
        Map<String, int[]> floats = InferenceModel.floatShapes(c);
        return InferenceModel.fromWeights(c, name -> {
            int n;
            int[] shape = floats.get(name);
            if (shape != null) {
                n = 1;
                for (int d : shape) {
                    n *= d;
                }
            } else {
                InferenceModel.ProjectionSpec s = InferenceModel.projectionSpecs(c).stream()
                        .filter(p -> (p.name() + ".weight").equals(name)).findFirst().orElseThrow();
                n = s.OC() * s.P();
            }
            float[] a = new float[n];
            boolean ones = name.endsWith("norm.weight");
            boolean zeros = name.endsWith(".bias");
            for (int i = 0; i < n; i++) {
                a[i] = ones ? 1.0f : zeros ? 0.0f : (float) (r.nextGaussian() * 0.02);
            }
            return a;
        }, par);
    }

    static void decode(String preset, int tokens, Parallel par) {
        long t0 = System.nanoTime();
        InferenceModel m = randomModel(preset, par);
        int[] prompt = new int[16];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 100 + 37 * i;
        }
        int max = Math.min(tokens, m.ctx() - prompt.length);
        Generator.generate(m, prompt, max, Strategies.full(), Sampler.greedy(), -1, 16, null); // warm-up
        Generator.generate(m, prompt, max, Strategies.full(), Sampler.greedy(), -1, 16, null);
        Generator.Result r = median(m, prompt, max, Strategies.full());
        long headBytes = 4L * m.V * m.C;
        System.out.printf(Locale.ROOT, "decode %s (random init, %.1f MB packed ternary + %.1f MB float head): prefill %.1f tok/s,"
                        + " decode %.1f tok/s (%d tokens; setup %.1f s)%n", preset, m.packedBytes() / 1e6, headBytes / 1e6,
                r.stats().prefillTokensPerSecond(), r.stats().decodeTokensPerSecond(), r.stats().decodeTokens,
                (System.nanoTime() - t0) / 1e9);
    }

    /** Runs per sweep entry: a generation of ~100 tokens takes well under a second, so one run is noisy. */
    static final int RUNS = 5;

    /** The run with the median decode speed of RUNS greedy generations (the tokens are the same every time). */
    static Generator.Result median(InferenceModel m, int[] prompt, int max, DecodingStrategy st) {
        List<Generator.Result> rs = new ArrayList<>();
        for (int i = 0; i < RUNS; i++) {
            rs.add(Generator.generate(m, prompt, max, st, Sampler.greedy(), -1, 64, null));
        }
        rs.sort(java.util.Comparator.comparingDouble(r -> r.stats().decodeTokensPerSecond()));
        return rs.get(RUNS / 2);
    }

    static void sweep(InferenceModel m, String promptIds, int tokens) {
        int[] prompt;
        if (promptIds != null) {
            prompt = java.util.Arrays.stream(promptIds.split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray();
        } else {
            prompt = new int[] {464, 3290, 286, 262}; // "The history of the"
        }
        int max = Math.min(tokens, m.ctx() - prompt.length);
        List<DecodingStrategy> all = new ArrayList<>();
        for (int E = 1; E < m.L; E++) {
            all.add(Strategies.fixedExit(E));
            for (int K : new int[] {2, 4, 8}) {
                all.add(Strategies.selfSpeculative(E, K));
            }
        }
        for (float t : new float[] {0.5f, 0.9f}) { // the adaptive exits, at the paper's threshold and a strict one
            all.add(Strategies.router(t));
            all.add(Strategies.confidence(t));
        }
        // warm-up: every strategy once, so that the baseline is not measured on colder code than the others
        Generator.generate(m, prompt, max, Strategies.full(), Sampler.greedy(), -1, 64, null);
        for (DecodingStrategy st : all) {
            Generator.generate(m, prompt, max, st, Sampler.greedy(), -1, 64, null);
        }
        Generator.Result base = median(m, prompt, max, Strategies.full());
        System.out.printf(Locale.ROOT, "sweep baseline full: decode %.1f tok/s (median of %d runs of %d tokens)%n",
                base.stats().decodeTokensPerSecond(), RUNS, max);
        for (DecodingStrategy st : all) {
            Generator.Result r = median(m, prompt, max, st);
            int same = 0;
            for (int i = 0; i < Math.min(r.tokens().length, base.tokens().length); i++) {
                same += r.tokens()[i] == base.tokens()[i] ? 1 : 0;
            }
            System.out.printf(Locale.ROOT, "sweep %-28s decode %8.1f tok/s (x%.2f)  acceptance %s  agreement %.3f  mean exit %.2f%n",
                    st.name(), r.stats().decodeTokensPerSecond(),
                    r.stats().decodeTokensPerSecond() / base.stats().decodeTokensPerSecond(),
                    Double.isNaN(r.stats().acceptanceRate()) ? "  -  " : String.format(Locale.ROOT, "%.3f", r.stats().acceptanceRate()),
                    (double) same / base.tokens().length, r.stats().meanExitLayer());
        }
    }
}
