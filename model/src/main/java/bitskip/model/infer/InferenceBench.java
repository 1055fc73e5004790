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
 *   <li>{@code memory}: the two GEMVs of decoding on a matrix far larger than the caches, in GB/s of weights
 *       read: the packed ternary GEMV (int8 × i2_g128) and the int8 head GEMV ({@link LmHead}, int8 weights,
 *       per-row scales; on the {@link LmHead.Int8Kernel} decoding uses, and on the Vector API's too when that is
 *       oneDNN), against the machine's bandwidth measured in the same process: a STREAM-style copy
 *       (read + write bytes) and a read-only sum, all with all threads. After 40 calls of each GEMV as
 *       warm-up, {@code --gemv-rounds} rounds each measure copy (best of 3), read (best of 3) and each GEMV
 *       (best of 10) one right after the other and print their ratios; the summary gives the median and range
 *       of the ratios. Rounds, because this machine's bandwidth is not steady: a single copy figure taken a
 *       minute before the GEMV can belong to another state of the machine (see benchmarks/README.md);</li>
 *   <li>{@code decode}: single-stream prefill and decode tokens/s of random-initialized presets (weights
 *       random: the speed does not depend on them), with the float head and with the int8 head, alternating in
 *       one process ({@code --alternations} pairs, each the median of 5 generations);</li>
 *   <li>{@code sweep} (with {@code --model FILE}, a deployed trained model): exit layer × drafts, tokens/s,
 *       acceptance and agreement with the full model, the autoregressive baseline measured in the same run;
 *       with a draft head also the drafts on the whole head, and the draft-filtered confidence exit; with
 *       {@code --baseline FILE} (e.g. the float-head export of the same checkpoint) that file's full model
 *       too. {@code --prompts FILE}: one prompt per line (GPT-2 BPE); a strategy's speed is then its tokens
 *       over its time summed over the prompts. Each strategy's ratio is to a measurement of the full model
 *       taken right before it (this machine drifts within a sweep). {@code --only TEXT}: just the strategies
 *       whose name contains TEXT (e.g. {@code "E=1,"}).</li>
 * </ol>
 * Arguments: {@code [--presets tiny,small,paper-85m] [--tokens N] [--alternations A] [--gemv-rows R --gemv-cols C]
 * [--gemv-rounds K] [--no-memory] [--model FILE [--baseline FILE] [--prompt-ids 1,2,3 | --prompts FILE] [--only TEXT]]
 * [--threads T] [--head-activation-bits 9|8]} (the last: the int8 head's input codes in {@code memory} and {@code decode}).
 */
public final class InferenceBench {
    private InferenceBench() {}

    public static void main(String[] args) throws Exception {
        String presets = "tiny,small";
        int tokens = 64, rows = 16384, cols = 16384, rounds = 5, alternations = 2;
        int threads = Runtime.getRuntime().availableProcessors();
        Path model = null, baseline = null, prompts = null;
        String promptIds = null, only = "";
        boolean skipMemory = false;
        int xLevels = LmHead.X_LEVELS;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--presets" -> presets = args[++i];
                case "--tokens" -> tokens = Integer.parseInt(args[++i]);
                case "--gemv-rows" -> rows = Integer.parseInt(args[++i]);
                case "--gemv-cols" -> cols = Integer.parseInt(args[++i]);
                case "--gemv-rounds" -> rounds = Integer.parseInt(args[++i]);
                case "--model" -> model = Path.of(args[++i]);
                case "--prompt-ids" -> promptIds = args[++i];
                case "--prompts" -> prompts = Path.of(args[++i]);
                case "--baseline" -> baseline = Path.of(args[++i]);
                case "--alternations" -> alternations = Integer.parseInt(args[++i]);
                case "--threads" -> threads = Integer.parseInt(args[++i]);
                case "--no-memory" -> skipMemory = true;
                case "--only" -> only = args[++i];
                case "--head-activation-bits" -> xLevels = LmHead.activationLevels(Integer.parseInt(args[++i]));
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        Parallel par = new Parallel(threads);
        System.out.printf(Locale.ROOT, "machine: %d cores, %s, threads %d%n", Runtime.getRuntime().availableProcessors(),
                System.getProperty("java.vm.name") + " " + System.getProperty("java.version"), threads);
        if (!skipMemory) {
            memory(rows, cols, rounds, xLevels, par);
        }
        if (!presets.isEmpty()) {
            for (String p : presets.split(",")) {
                decode(p, tokens, alternations, xLevels, par);
            }
        }
        if (model != null) {
            sweep(DeployFile.read(model, par), baseline == null ? null : DeployFile.read(baseline, par),
                    prompts(promptIds, prompts), tokens, only);
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

    /** GEMVs, copy and read in paired rounds (see the class comment); prints one line per round and a summary. */
    static void memory(int rows, int cols, int rounds, int xLevels, Parallel par) {
        if (rounds < 1) {
            throw new IllegalArgumentException("--gemv-rounds must be at least 1, got " + rounds);
        }
        Op copy = copyOp(par), read = readOp(par), gemv = gemvOp(rows, cols, par, false);
        // the ternary GEMV on the i2_g128 kernel and, where 512-bit vectors are native, on the lookup kernel (the
        // one decoding uses is marked); the int8 head on the kernel decoding uses, and on the Vector API's beside it
        // when that is oneDNN
        List<Op> gemvs = new ArrayList<>(List.of(gemv));
        List<String> names = new ArrayList<>(List.of("ternary gemv (i2_g128" + (PackedGemm.LOOKUP ? ")" : ", decoding's)")));
        Op lookup = null;
        if (PackedGemm.LOOKUP || TernaryLut.nativeWidth()) {
            gemvs.add(lookup = gemvOp(rows, cols, par, true));
            names.add("ternary gemv (lookup" + (PackedGemm.LOOKUP ? ", decoding's)" : ")"));
        }
        for (LmHead.Int8Kernel k : LmHead.Int8Kernel.chosen() == LmHead.Int8Kernel.ONEDNN
                ? new LmHead.Int8Kernel[] {LmHead.Int8Kernel.ONEDNN, LmHead.Int8Kernel.JAVA} : new LmHead.Int8Kernel[] {LmHead.Int8Kernel.JAVA}) {
            gemvs.add(int8HeadOp(rows, cols, xLevels, par, k));
            names.add("int8 head gemv (" + k.name().toLowerCase(Locale.ROOT) + ")");
        }
        int G = gemvs.size();
        System.out.printf(Locale.ROOT, "memory: copy of 2 x %d MB float arrays (read + write bytes), sum of a %d MB array, "
                        + "ternary gemv %dx%d packed i2_g128 (%.1f MB)%s, int8 head gemv %dx%d (%.1f MB); %d rounds "
                        + "(each GEMV's GB/s counts the bytes of its own layout)%n",
                COPY_FLOATS * 4L >> 20, READ_FLOATS * 4L >> 20, rows, cols, gemv.bytes() / 1e6,
                lookup == null ? "" : String.format(Locale.ROOT, " and in the lookup layout (%.1f MB)", lookup.bytes() / 1e6),
                rows, cols, gemvs.get(gemvs.size() - 1).bytes() / 1e6, rounds);
        // timing every call showed the JIT's final GEMV code arriving only after 15–20 calls
        for (Op g : gemvs) {
            bestGBs(40, 40, g.bytes(), g.run());
        }
        double[][] ofCopy = new double[G][rounds], ofRead = new double[G][rounds];
        double[] best = new double[G];
        for (int k = 0; k < rounds; k++) {
            double c = bestGBs(4, 1, copy.bytes(), copy.run());
            double r = bestGBs(4, 1, read.bytes(), read.run());
            StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "round %d: copy %.2f GB/s, read %.2f GB/s", k + 1, c, r));
            for (int g = 0; g < G; g++) {
                double x = bestGBs(11, 1, gemvs.get(g).bytes(), gemvs.get(g).run());
                best[g] = Math.max(best[g], x);
                ofCopy[g][k] = x / c;
                ofRead[g][k] = x / r;
                line.append(String.format(Locale.ROOT, "; %s %.2f GB/s = %.0f%% of the copy, %.0f%% of the read", names.get(g), x,
                        100 * ofCopy[g][k], 100 * ofRead[g][k]));
            }
            System.out.println(line);
        }
        for (int g = 0; g < G; g++) {
            System.out.printf(Locale.ROOT, "%s: best %.2f GB/s; per round %s of the copy bandwidth, %s of the read bandwidth%n",
                    names.get(g), best[g], percentSpread(ofCopy[g]), percentSpread(ofRead[g]));
        }
    }

    /** "median M% (min A–B%)" of the fractions x. */
    static String percentSpread(double[] x) {
        double[] s = sorted(x);
        return String.format(Locale.ROOT, "median %.0f%% (range %.0f–%.0f%%)", 100 * median(s), 100 * s[0], 100 * s[s.length - 1]);
    }

    /** A sorted copy of x. */
    static double[] sorted(double[] x) {
        double[] s = x.clone();
        java.util.Arrays.sort(s);
        return s;
    }

    /** The median of sorted values (the mean of the middle two for an even count). */
    static double median(double[] sorted) {
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
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
    static Op gemvOp(int OC, int C, Parallel par, boolean lookup) {
        int rb = TernaryPack.i2RowBytes(C), Cp = TernaryPack.i2PaddedCols(C);
        SplittableRandom r = new SplittableRandom(1);
        byte[] packed = randomTernaryBytes(OC * rb, r);
        short[] q = new short[Cp];
        for (int i = 0; i < C; i++) {
            q[i] = (short) (r.nextInt(255) - 127);
        }
        int[] acc = new int[OC];
        if (lookup) {
            short[] lut = TernaryLut.fromI2(packed, OC, C);
            PackedGemm.TernaryJob job = new PackedGemm.TernaryJob(acc, q, packed, lut, Cp, OC, null);
            return new Op(() -> PackedGemm.ternary(1, par, job), 2.0 * lut.length);
        }
        return new Op(() -> PackedGemm.ternary(acc, q, packed, 1, Cp, OC, par), packed.length);
    }

    /**
     * One int8 head GEMV ({@link LmHead#forward}: the input row's quantization to ±xLevels, the int8 products, the
     * per-row scaling) of a random OC × C int8 matrix; bytes = codes and scales.
     */
    static Op int8HeadOp(int OC, int C, int xLevels, Parallel par, LmHead.Int8Kernel kernel) {
        SplittableRandom r = new SplittableRandom(2);
        byte[] q = new byte[OC * C];
        for (int i = 0; i < q.length; i++) {
            q[i] = (byte) (r.nextInt(255) - 127);
        }
        float[] scale = new float[OC], x = new float[C], out = new float[OC];
        java.util.Arrays.fill(scale, 0.01f);
        for (int i = 0; i < C; i++) {
            x[i] = (float) r.nextGaussian();
        }
        LmHead h = LmHead.int8(q, scale, OC, C, xLevels);
        return new Op(() -> h.forward(out, x, 0, 1, par, kernel), h.bytes());
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

    /**
     * Decode speed of a random-initialized preset with the float head and with the int8 head, alternating in
     * one process: each of `alternations` pairs is the median of RUNS generations of each.
     */
    static void decode(String preset, int tokens, int alternations, int xLevels, Parallel par) {
        long t0 = System.nanoTime();
        InferenceModel f32 = randomModel(preset, par), int8 = f32.withHead(LmHead.Format.INT8, xLevels);
        int[] prompt = new int[16];
        for (int i = 0; i < prompt.length; i++) {
            prompt[i] = 100 + 37 * i;
        }
        int max = Math.min(tokens, f32.ctx() - prompt.length);
        for (InferenceModel m : new InferenceModel[] {f32, int8}) { // warm-up
            Generator.generate(m, prompt, max, Strategies.full(), Sampler.greedy(), -1, 16, null);
            Generator.generate(m, prompt, max, Strategies.full(), Sampler.greedy(), -1, 16, null);
        }
        System.out.printf(Locale.ROOT, "decode %s (random init, %.1f MB packed ternary; head %.1f MB float, %.1f MB int8 with "
                        + "activation codes of ±%d; setup %.1f s)%n", preset, f32.packedBytes() / 1e6, f32.head.bytes() / 1e6,
                int8.head.bytes() / 1e6, xLevels, (System.nanoTime() - t0) / 1e9);
        for (int a = 0; a < alternations; a++) {
            Generator.Result rf = median(f32, prompt, max, Strategies.full());
            Generator.Result ri = median(int8, prompt, max, Strategies.full());
            double f = rf.stats().decodeTokensPerSecond(), i = ri.stats().decodeTokensPerSecond();
            System.out.printf(Locale.ROOT, "decode %s: float head %.1f tok/s (%.3f ms/token), int8 head %.1f tok/s (%.3f ms/token): "
                            + "x%.2f; prefill %.1f / %.1f tok/s (%d tokens, median of %d); %s / %s%n", preset, f, 1e3 / f, i, 1e3 / i,
                    i / f, rf.stats().prefillTokensPerSecond(), ri.stats().prefillTokensPerSecond(), rf.stats().decodeTokens, RUNS,
                    layersAndHead(rf.stats()), layersAndHead(ri.stats()));
        }
    }

    /** "layers A + head B ms/token" of a full-model generation (the head part includes choosing the token). */
    static String layersAndHead(DecodeStats st) {
        return String.format(Locale.ROOT, "layers %.3f + head %.3f ms/token", st.layerNanos / 1e6 / st.decodeTokens,
                st.headNanos / 1e6 / st.decodeTokens);
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

    /** The prompts of a sweep: --prompt-ids, or one GPT-2-encoded line per prompt of --prompts, or "The history of the". */
    static List<int[]> prompts(String promptIds, Path file) throws java.io.IOException {
        List<int[]> out = new ArrayList<>();
        if (promptIds != null && file != null) {
            throw new IllegalArgumentException("give --prompt-ids or --prompts, not both");
        }
        if (promptIds != null) {
            out.add(java.util.Arrays.stream(promptIds.split(",")).mapToInt(s -> Integer.parseInt(s.trim())).toArray());
        } else if (file != null) {
            bitskip.model.data.Tokenizer tok = bitskip.model.data.Tokenizer.gpt2();
            for (String line : java.nio.file.Files.readAllLines(file)) {
                if (!line.isBlank()) {
                    out.add(tok.encode(line.strip()));
                }
            }
            if (out.isEmpty()) {
                throw new IllegalArgumentException(file + ": no prompt (one per line)");
            }
        } else {
            out.add(new int[] {464, 3290, 286, 262}); // "The history of the"
        }
        return out;
    }

    /** One strategy's generations over every prompt (each the median of RUNS): tokens and statistics summed. */
    record Sweep(int[][] tokens, long decodeTokens, long decodeNanos, long drafted, long accepted, long exitSum, long exits,
                 long draftNanos, long layerNanos, long headNanos) {
        double tokensPerSecond() {
            return decodeTokens / (decodeNanos / 1e9);
        }

        /** Milliseconds per decoded token spent drafting, in layers and in heads (see DecodeStats). */
        String perToken() {
            double t = decodeTokens * 1e6;
            return String.format(Locale.ROOT, "ms/token: draft %.3f, layers %.3f, head %.3f", draftNanos / t, layerNanos / t,
                    headNanos / t);
        }

        static Sweep of(InferenceModel m, List<int[]> prompts, int tokens, DecodingStrategy st) {
            int[][] out = new int[prompts.size()][];
            long dt = 0, dn = 0, dr = 0, ac = 0, es = 0, ex = 0, dra = 0, lay = 0, hd = 0;
            for (int i = 0; i < out.length; i++) {
                int[] p = prompts.get(i);
                Generator.Result r = median(m, p, Math.min(tokens, m.ctx() - p.length), st);
                out[i] = r.tokens();
                DecodeStats s = r.stats();
                dt += s.decodeTokens;
                dn += s.decodeNanos;
                dr += s.drafted;
                ac += s.accepted;
                es += s.exitLayerSum;
                ex += s.exitCount;
                dra += s.draftNanos;
                lay += s.layerNanos;
                hd += s.headNanos;
            }
            return new Sweep(out, dt, dn, dr, ac, es, ex, dra, lay, hd);
        }

        /** Share of positions, over every prompt, whose token equals base's. */
        double agreement(Sweep base) {
            long same = 0, all = 0;
            for (int i = 0; i < tokens.length; i++) {
                for (int j = 0; j < base.tokens[i].length; j++) {
                    same += j < tokens[i].length && tokens[i][j] == base.tokens[i][j] ? 1 : 0;
                    all++;
                }
            }
            return (double) same / all;
        }
    }

    static void sweep(InferenceModel m, InferenceModel other, List<int[]> prompts, int tokens, String only) {
        List<DecodingStrategy> all = new ArrayList<>();
        boolean draft = m.draft != null;
        for (int E = 1; E < m.L; E++) {
            all.add(Strategies.fixedExit(E));
            for (int K : new int[] {2, 3, 4, 8}) {
                all.add(Strategies.selfSpeculative(E, K, true));
                if (draft) {
                    all.add(Strategies.selfSpeculative(E, K, false));
                }
            }
        }
        for (float t : new float[] {0.5f, 0.9f}) { // the adaptive exits, at the paper's threshold and a strict one
            all.add(Strategies.router(t));
            all.add(Strategies.confidence(t));
            if (draft) {
                all.add(Strategies.confidenceDraftFiltered(t));
            }
        }
        all.removeIf(st -> !st.name().contains(only));
        if (all.isEmpty()) {
            throw new IllegalArgumentException("--only " + only + ": no strategy's name contains it");
        }
        // warm-up: every strategy once, so that the baseline is not measured on colder code than the others
        for (InferenceModel x : other == null ? new InferenceModel[] {m} : new InferenceModel[] {m, other}) {
            Sweep.of(x, prompts.subList(0, 1), tokens, Strategies.full());
        }
        for (DecodingStrategy st : all) {
            Sweep.of(m, prompts.subList(0, 1), tokens, st);
        }
        String heads = m.head.describe() + (draft ? ", draft head of " + m.draft.size() + " tokens" : "");
        Sweep base = Sweep.of(m, prompts, tokens, Strategies.full());
        Sweep otherBase = other == null ? null : Sweep.of(other, prompts, tokens, Strategies.full());
        System.out.printf(Locale.ROOT, "sweep baseline full (%s): decode %.1f tok/s (%d prompts, up to %d tokens each, median of %d runs); %s%n",
                heads, base.tokensPerSecond(), prompts.size(), tokens, RUNS, base.perToken());
        if (otherBase != null) {
            System.out.printf(Locale.ROOT, "sweep baseline full (--baseline, %s head): decode %.1f tok/s; agreement with this "
                    + "file's full model %.3f%n", other.head.format.id, otherBase.tokensPerSecond(), otherBase.agreement(base));
        }
        // Each strategy is timed right after a measurement of the full model of its own, and its ratio is to that
        // one: this machine's speed drifts by 20% within a sweep (one baseline taken at the start made a ×1.19
        // read as ×1.57), and adjacent pairs cancel the drift. The spread of those baselines is the noise level.
        double[] bases = new double[all.size()], rates = new double[all.size()];
        for (int i = 0; i < all.size(); i++) {
            DecodingStrategy st = all.get(i);
            Sweep pair = Sweep.of(m, prompts, tokens, Strategies.full());
            Sweep r = Sweep.of(m, prompts, tokens, st);
            bases[i] = pair.tokensPerSecond();
            rates[i] = r.tokensPerSecond();
            System.out.printf(Locale.ROOT, "sweep %-44s decode %8.1f tok/s (x%.2f of the full model's %.1f just before%s)  acceptance %s  "
                            + "agreement %.3f  mean exit %.2f  %s%n",
                    st.name(), r.tokensPerSecond(), r.tokensPerSecond() / bases[i], bases[i],
                    otherBase == null ? "" : String.format(Locale.ROOT, "; x%.2f of --baseline, measured once at the start",
                            r.tokensPerSecond() / otherBase.tokensPerSecond()),
                    r.drafted == 0 ? "  -  " : String.format(Locale.ROOT, "%.3f", (double) r.accepted / r.drafted),
                    r.agreement(base), (double) r.exitSum / r.exits, r.perToken());
        }
        System.out.print(againstMedian(all.stream().map(DecodingStrategy::name).toList(), rates, bases));
    }

    /**
     * The sweep's closing lines: the spread of the paired full-model measurements (the noise level), then every
     * strategy's rate against their median, fastest first, beside its ratio to its adjacent measurement. A
     * strategy that happened to follow a slow full-model run looks fast against it (a ×1.40 that was ×1.19 against
     * the median); where the two ratios disagree by more than the spread, neither is a finding.
     */
    static String againstMedian(List<String> names, double[] rates, double[] bases) {
        double[] s = sorted(bases);
        double med = median(s);
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
                "sweep full model measured before each strategy (%d times): median %.1f tok/s, range %.1f–%.1f (%+.0f%% to %+.0f%%)%n",
                s.length, med, s[0], s[s.length - 1], 100 * (s[0] / med - 1), 100 * (s[s.length - 1] / med - 1)));
        Integer[] order = new Integer[rates.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Double.compare(rates[b], rates[a]));
        for (int i : order) {
            out.append(String.format(Locale.ROOT, "sweep vs median  %-44s x%.2f of the median full model (x%.2f of the adjacent one)%n",
                    names.get(i), rates[i] / med, rates[i] / bases[i]));
        }
        return out.toString();
    }
}
