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
 *   <li>{@code memory}: the packed ternary GEMV (int8 × i2_g128) on a matrix far larger than the caches, in
 *       GB/s of packed weights, against the machine's bandwidth measured in the same process: a STREAM-style
 *       copy (read + write bytes) and a read-only sum, all with all threads. After 40 GEMV calls of warm-up,
 *       {@code --gemv-rounds} rounds each measure copy (best of 3), read (best of 3) and GEMV (best of 10) one
 *       right after the other and print their ratios; the summary gives the median and range of the ratios.
 *       Rounds, because this machine's bandwidth is not steady: a single copy figure taken a minute before
 *       the GEMV can belong to another state of the machine (see benchmarks/README.md);</li>
 *   <li>{@code decode}: single-stream prefill and decode tokens/s of random-initialized presets after a
 *       warm-up run (weights random: the speed does not depend on them);</li>
 *   <li>{@code sweep} (with {@code --model FILE}, a deployed trained model): exit layer × drafts, tokens/s,
 *       acceptance and agreement with the full model, the autoregressive baseline measured in the same run.</li>
 * </ol>
 * Arguments: {@code [--presets tiny,small,paper-85m] [--tokens N] [--gemv-rows R --gemv-cols C] [--gemv-rounds K]
 * [--model FILE --prompt-ids 1,2,3] [--threads T]}.
 */
public final class InferenceBench {
    private InferenceBench() {}

    public static void main(String[] args) throws Exception {
        String presets = "tiny,small";
        int tokens = 64, rows = 16384, cols = 16384, rounds = 5, threads = Runtime.getRuntime().availableProcessors();
        Path model = null;
        String promptIds = null;
        boolean skipMemory = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--presets" -> presets = args[++i];
                case "--tokens" -> tokens = Integer.parseInt(args[++i]);
                case "--gemv-rows" -> rows = Integer.parseInt(args[++i]);
                case "--gemv-cols" -> cols = Integer.parseInt(args[++i]);
                case "--gemv-rounds" -> rounds = Integer.parseInt(args[++i]);
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
            memory(rows, cols, rounds, par);
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

    /** A benchmarked operation and the bytes it moves per call. */
    record Op(Runnable run, double bytes) {}

    /** GEMV, copy and read in paired rounds (see the class comment); prints one line per round and a summary. */
    static void memory(int rows, int cols, int rounds, Parallel par) {
        if (rounds < 1) {
            throw new IllegalArgumentException("--gemv-rounds must be at least 1, got " + rounds);
        }
        Op copy = copyOp(par), read = readOp(par), gemv = gemvOp(rows, cols, par);
        System.out.printf(Locale.ROOT, "memory: copy of 2 x %d MB float arrays (read + write bytes), sum of a %d MB array, "
                        + "gemv %dx%d packed i2_g128 (%.1f MB); %d rounds%n", COPY_FLOATS * 4L >> 20, READ_FLOATS * 4L >> 20,
                rows, cols, gemv.bytes() / 1e6, rounds);
        // timing every call showed the JIT's final GEMV code arriving only after 15–20 calls
        bestGBs(40, 40, gemv.bytes(), gemv.run());
        double[] ofCopy = new double[rounds], ofRead = new double[rounds];
        double bestGemv = 0;
        for (int k = 0; k < rounds; k++) {
            double c = bestGBs(4, 1, copy.bytes(), copy.run());
            double r = bestGBs(4, 1, read.bytes(), read.run());
            double g = bestGBs(11, 1, gemv.bytes(), gemv.run());
            bestGemv = Math.max(bestGemv, g);
            ofCopy[k] = g / c;
            ofRead[k] = g / r;
            System.out.printf(Locale.ROOT, "round %d: copy %.2f GB/s, read %.2f GB/s, gemv %.2f GB/s = %.0f%% of the copy, %.0f%% of the read%n",
                    k + 1, c, r, g, 100 * ofCopy[k], 100 * ofRead[k]);
        }
        System.out.printf(Locale.ROOT, "gemv: best %.2f GB/s; per round %s of the copy bandwidth, %s of the read bandwidth%n",
                bestGemv, percentSpread(ofCopy), percentSpread(ofRead));
    }

    /** "median M% (min A–B%)" of the fractions x. */
    static String percentSpread(double[] x) {
        double[] s = x.clone();
        java.util.Arrays.sort(s);
        int n = s.length;
        double median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        return String.format(Locale.ROOT, "median %.0f%% (range %.0f–%.0f%%)", 100 * median, 100 * s[0], 100 * s[n - 1]);
    }

    private static final int COPY_FLOATS = 64 << 20, READ_FLOATS = 128 << 20;

    /** Copies a 256 MB float array into another, split in 64 slices over the threads (read + written bytes). */
    static Op copyOp(Parallel par) {
        int n = COPY_FLOATS;
        float[] a = new float[n], b = new float[n];
        par.forRange(n, Long.MAX_VALUE, (f, t) -> java.util.Arrays.fill(a, f, t, 1.0f));
        return new Op(() -> par.forRange(64, Long.MAX_VALUE,
                (f, t) -> System.arraycopy(a, slice(n, f), b, slice(n, f), slice(n, t) - slice(n, f))), 2.0 * 4 * n);
    }

    /**
     * Sums a 512 MB float array, split in 64 slices over the threads: the read-only traffic a GEMV makes (the
     * copy figure counts a write for every read, as STREAM does).
     */
    static Op readOp(Parallel par) {
        int n = READ_FLOATS;
        float[] a = new float[n];
        par.forRange(n, Long.MAX_VALUE, (f, t) -> java.util.Arrays.fill(a, f, t, 1.0f));
        double[] sums = new double[64];
        return new Op(() -> {
            par.forRange(64, Long.MAX_VALUE, (f, t) -> {
                for (int part = f; part < t; part++) {
                    int lo = slice(n, part), hi = slice(n, part + 1);
                    FloatVector acc = FloatVector.zero(FloatVector.SPECIES_PREFERRED);
                    int L = FloatVector.SPECIES_PREFERRED.length(), c = lo;
                    for (; c + L <= hi; c += L) {
                        acc = acc.add(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, a, c));
                    }
                    sums[part] = acc.reduceLanes(VectorOperators.ADD);
                }
            });
            double check = 0;
            for (double x : sums) {
                check += x;
            }
            if (check != n) { // also keeps the sums alive
                throw new IllegalStateException("read benchmark summed " + check + ", expected " + n);
            }
        }, 4.0 * n);
    }

    /**
     * n bytes of packed ternary codes for speed measurements: every 2-bit field a valid code (0, +1 or −1,
     * a third each), so the products do what they would on a real model.
     */
    public static byte[] randomTernaryBytes(int n, SplittableRandom r) {
        byte[] packed = new byte[n];
        for (int i = 0; i < n; i++) {
            int b = 0;
            for (int k = 0; k < 4; k++) {
                b |= (r.nextInt(3) == 0 ? 0 : r.nextBoolean() ? 1 : 3) << (2 * k);
            }
            packed[i] = (byte) b;
        }
        return packed;
    }

    /** One GEMV of a random OC × C ternary matrix (valid codes only) with random int8 activations. */
    static Op gemvOp(int OC, int C, Parallel par) {
        int rb = TernaryPack.i2RowBytes(C), Cp = TernaryPack.i2PaddedCols(C);
        SplittableRandom r = new SplittableRandom(1);
        byte[] packed = randomTernaryBytes(OC * rb, r);
        short[] q = new short[Cp];
        for (int i = 0; i < C; i++) {
            q[i] = (short) (r.nextInt(255) - 127);
        }
        int[] acc = new int[OC];
        return new Op(() -> PackedGemm.ternary(acc, q, packed, 1, Cp, OC, par), packed.length);
    }

    /** A random-initialized model of a preset (bitskip variant, paper profile). */
    static InferenceModel randomModel(String preset, Parallel par) {
        BitSkipConfig c = Presets.build(preset, "paper", "bitskip");
        SplittableRandom r = new SplittableRandom(7);
        Map<String, int[]> floats = InferenceModel.floatShapes(c);
        return InferenceModel.fromWeights(c, name -> {
            int n;
            int[] shape = name.equals(InferenceModel.HEAD_WEIGHT) ? new int[] {c.vocabSize(), c.dModel()} : floats.get(name);
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
        long headBytes = m.head.bytes();
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
