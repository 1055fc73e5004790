package bitskip.model.infer;

import bitskip.engine.cpu.Lanes;
import bitskip.kernels.TernaryPack;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fast paths of inference on the CPU, with the Vector API:
 * <ul>
 *   <li>{@link #ternary}: int8 activation codes (held as shorts) times ternary weights, int32 results,
 *   bit-exact against the scalar reference {@code bitskip.kernels.TernaryMatmul#forward}: on the file's i2_g128
 *   layout ({@link TernaryI2}), or by table lookup ({@link TernaryLut}) where the caller passes that layout (the
 *   same sums, fewer operations per weight). Several products of one call share one split over the threads.</li>
 *   <li>{@link #dense}: float (N, C) times (OC, C)ᵀ for the LM head, with a fixed lane order per row (the
 *   result of a row does not depend on N or on the thread count).</li>
 *   <li>{@link #int8}: the int8 LM head, (N, C) activation codes of at most 9 bits times (OC, C) int8 weights:
 *   every product is exact in a 16-bit lane (|w·x| ≤ 127·258 < 2^15), pairs of neighbouring products are
 *   added into 32-bit lanes, and the row sum is an exact int32 (so any order gives the same bits).</li>
 * </ul>
 * All are split over output rows by {@link Parallel}.
 */
public final class PackedGemm {
    private PackedGemm() {}

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /**
     * Per-thread buffers, one per product of a call: the activation codes in the wide vector's column order, or the
     * lookup kernel's tables.
     */
    private static final ThreadLocal<short[][]> SCRATCH = ThreadLocal.withInitial(() -> new short[1][]);
    /** Whether the products take {@link TernaryLut}'s layout where they have it ({@link TernaryLut#preferred}). */
    public static final boolean LOOKUP = TernaryLut.preferred();

    /** The ternary kernel decoding uses, in words (for reports). */
    public static String kernelName() {
        return LOOKUP ? "by table lookup" : "on i2_g128 (" + TernaryI2.WIDE.vectorBitSize() + "-bit)";
    }

    /**
     * One product of {@link #ternary(int, Parallel, TernaryJob...)}: acc (N, OC) = q (N, Cp) times the packed
     * (OC, Cp) codes, then epilogue.run(from, to) (may be null) on the thread that computed output rows
     * [from, to) for every n, right after them: a projection's float scaling runs split over the threads with
     * its rows still in cache instead of alone after the GEMV. lut: the same codes in {@link TernaryLut}'s layout, or
     * null; a call whose products all have one runs on the lookup kernel (the same sums).
     */
    public record TernaryJob(int[] acc, short[] q, byte[] packed, short[] lut, int Cp, int OC, Parallel.Range epilogue) {
        /** A product on the i2_g128 kernel alone (no lookup layout). */
        public TernaryJob(int[] acc, short[] q, byte[] packed, int Cp, int OC, Parallel.Range epilogue) {
            this(acc, q, packed, null, Cp, OC, epilogue);
        }

        void check(int N) {
            if (Cp % TernaryPack.GROUP != 0) {
                throw new IllegalArgumentException("Cp = " + Cp + " must be a multiple of " + TernaryPack.GROUP);
            }
            if (q.length < (long) N * Cp || packed.length < (long) OC * (Cp / 4) || acc.length < (long) N * OC) {
                throw new IllegalArgumentException("array too short for N=" + N + " Cp=" + Cp + " OC=" + OC);
            }
        }
    }

    /**
     * acc[n·OC + o] = Σ_c code[o, c]·q[n·Cp + c] for n < N, o < OC. q holds N rows of Cp shorts (Cp a multiple
     * of 128, the padding columns zero or anything: their codes are 0); packed is OC rows of Cp/4 bytes.
     */
    public static void ternary(int[] acc, short[] q, byte[] packed, int N, int Cp, int OC, Parallel par) {
        ternary(N, par, TernaryI2.WIDE, new TernaryJob(acc, q, packed, Cp, OC, null));
    }

    static void ternary(int[] acc, short[] q, byte[] packed, int N, int Cp, int OC, Parallel par, VectorSpecies<Short> wide) {
        ternary(N, par, wide, new TernaryJob(acc, q, packed, Cp, OC, null));
    }

    /**
     * Several independent products over the same N rows in one parallel call, their output rows one range
     * split over the threads (the q, k and v projections of a layer: one wake-up of the pool and one tail
     * instead of three; each result is the same as the product computed alone).
     */
    public static void ternary(int N, Parallel par, TernaryJob... jobs) {
        ternary(N, par, TernaryI2.WIDE, jobs);
    }

    private static void ternary(int N, Parallel par, VectorSpecies<Short> wide, TernaryJob... jobs) {
        if (java.util.Arrays.stream(jobs).allMatch(t -> t.lut != null)) {
            lookup(N, par, jobs);
            return;
        }
        int k = wide.length() / 16;
        short[][] qi = new short[jobs.length][];
        int[] start = new int[jobs.length + 1];
        long work = 0;
        short[][] buffers = k > 1 ? scratch(jobs.length) : null;
        for (int j = 0; j < jobs.length; j++) {
            TernaryJob t = jobs[j];
            t.check(N);
            qi[j] = t.q;
            if (k > 1) {
                if (buffers[j] == null || buffers[j].length < N * t.Cp) {
                    buffers[j] = new short[N * t.Cp];
                }
                qi[j] = buffers[j];
                TernaryI2.interleave(qi[j], t.q, N, t.Cp, k);
            }
            start[j + 1] = start[j] + t.OC;
            work += (long) N * t.Cp * t.OC / 4;
        }
        forProducts(par, start, work, (j, a, b) -> {
            TernaryJob t = jobs[j];
            TernaryI2.ternaryRows(t.acc, qi[j], t.packed, N, t.Cp, t.OC, a, b, k);
            if (t.epilogue != null) {
                t.epilogue.run(a, b);
            }
        });
    }

    /**
     * {@link #ternary(int, Parallel, TernaryJob...)} on {@link TernaryLut}: each product's tables built on the calling
     * thread, then the 32-row blocks of all products one range split over the threads, each block's epilogue on the
     * thread that computed it.
     */
    private static void lookup(int N, Parallel par, TernaryJob... jobs) {
        short[][] tables = scratch(jobs.length);
        int[] start = new int[jobs.length + 1];
        long work = 0;
        for (int j = 0; j < jobs.length; j++) {
            TernaryJob t = jobs[j];
            t.check(N);
            int size = TernaryLut.tableShorts(N, t.Cp);
            if (tables[j] == null || tables[j].length < size) {
                tables[j] = new short[size];
            }
            TernaryLut.tables(tables[j], t.q, N, t.Cp);
            start[j + 1] = start[j] + TernaryLut.blocks(t.OC);
            work += (long) N * t.Cp * t.OC / 4;
        }
        forProducts(par, start, work, (j, a, b) -> {
            TernaryJob t = jobs[j];
            TernaryLut.rows(t.acc, tables[j], t.lut, N, t.Cp, t.OC, a, b);
            if (t.epilogue != null) {
                t.epilogue.run(a * TernaryLut.ROWS, Math.min(t.OC, b * TernaryLut.ROWS));
            }
        });
    }

    /** Units [a, b) of product j. */
    @FunctionalInterface
    private interface ProductRange {
        void run(int j, int a, int b);
    }

    /**
     * The units of several products (product j's are [start[j], start[j + 1])) as one range split over the threads:
     * body runs on each product's part of a thread's chunk, in product-local units.
     */
    private static void forProducts(Parallel par, int[] start, long work, ProductRange body) {
        int products = start.length - 1;
        par.forRange(start[products], work, (from, to) -> {
            for (int j = 0; j < products; j++) {
                int a = Math.max(from, start[j]) - start[j], b = Math.min(to, start[j + 1]) - start[j];
                if (a < b) {
                    body.run(j, a, b);
                }
            }
        });
    }

    /** This thread's scratch buffers, at least one per product of a call (grow, never shrink). */
    private static short[][] scratch(int products) {
        short[][] buffers = SCRATCH.get();
        if (buffers.length < products) {
            buffers = java.util.Arrays.copyOf(buffers, products);
            SCRATCH.set(buffers);
        }
        return buffers;
    }


    /** Lanes of the int8 head's products: one 16-bit product per lane, the machine's preferred width. */
    private static final VectorSpecies<Short> P16 = ShortVector.SPECIES_PREFERRED;
    /** The int8 weights of one step, widened to P16 on load. */
    private static final VectorSpecies<Byte> P8 = VectorSpecies.of(byte.class,
            jdk.incubator.vector.VectorShape.forBitSize(P16.vectorBitSize() / 2));
    private static final VectorSpecies<Integer> P32 = VectorSpecies.of(int.class, P16.vectorShape());
    /** Largest activation code of the int8 head, so that 127·x fits in a 16-bit lane. */
    public static final int INT8_X_MAX = 258;

    /**
     * acc[n·OC + o] = Σ_c w[o·C + c]·x[n·C + c] for n < N, o < OC, exactly: w int8 (|w| ≤ 127), x codes with
     * |x| ≤ {@link #INT8_X_MAX}, C < 65536 (so the int32 sum cannot overflow). Rows of x go in fours, then in
     * pairs, each weight vector loaded and widened once for all of them (verification's k + 1 rows); the sums
     * are exact, so they do not depend on N, the grouping, the thread count or the lane order.
     */
    public static void int8(int[] acc, short[] x, byte[] w, int N, int C, int OC, Parallel par) {
        if (C >= 65536) {
            throw new IllegalArgumentException("int8 head: C = " + C + " columns could overflow the int32 sums");
        }
        if (x.length < (long) N * C || w.length < (long) OC * C || acc.length < (long) N * OC) {
            throw new IllegalArgumentException("array too short for N=" + N + " C=" + C + " OC=" + OC);
        }
        par.forRange(OC, (long) N * C * OC / 4, (from, to) -> int8Rows(acc, x, w, N, C, OC, from, to));
    }

    static void int8Rows(int[] acc, short[] x, byte[] w, int N, int C, int OC, int from, int to) {
        for (int o = from; o < to; o++) {
            int wr = o * C;
            int n = 0;
            for (; n + 3 < N; n += 4) {
                int8Quad(acc, x, n, w, wr, C, OC, o);
            }
            for (; n + 1 < N; n += 2) {
                long sums = int8Pair(x, n * C, w, wr, C);
                acc[n * OC + o] = (int) (sums >> 32);
                acc[(n + 1) * OC + o] = (int) sums;
            }
            if (n < N) {
                acc[n * OC + o] = int8Dot(x, n * C, w, wr, C);
            }
        }
    }

    // The four rows, the pair and the single row are methods of their own (the pair and the single row return plain
    // ints): with the pair's and the single row's loops in one method,
    // C2 (JDK 17) reached its inlining node cutoff and ran the single row's loop (decoding's, N = 1) on the
    // Vector API's boxing fallback (seen in a JFR profile of decoding).

    /** The two exact sums of rows x0 and x0 + C against weight row wr, as (first << 32) | second. */
    private static long int8Pair(short[] x, int x0, byte[] w, int wr, int C) {
        int L = P16.length(), bound = C - C % L, x1 = x0 + C;
        IntVector a0 = IntVector.zero(P32), a1 = a0;
        for (int c = 0; c < bound; c += L) {
            ShortVector wv = (ShortVector) ByteVector.fromArray(P8, w, wr + c).convertShape(VectorOperators.B2S, P16, 0);
            a0 = a0.add(pairSums(wv.mul(ShortVector.fromArray(P16, x, x0 + c))));
            a1 = a1.add(pairSums(wv.mul(ShortVector.fromArray(P16, x, x1 + c))));
        }
        int s0 = a0.reduceLanes(VectorOperators.ADD), s1 = a1.reduceLanes(VectorOperators.ADD);
        for (int c = bound; c < C; c++) {
            s0 += w[wr + c] * x[x0 + c];
            s1 += w[wr + c] * x[x1 + c];
        }
        return ((long) s0 << 32) | (s1 & 0xFFFFFFFFL);
    }

    /** The exact sums of rows n .. n+3 against weight row wr, into acc's column o. */
    private static void int8Quad(int[] acc, short[] x, int n, byte[] w, int wr, int C, int OC, int o) {
        int L = P16.length(), bound = C - C % L, x0 = n * C, x1 = x0 + C, x2 = x1 + C, x3 = x2 + C;
        IntVector a0 = IntVector.zero(P32), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < bound; c += L) {
            ShortVector wv = (ShortVector) ByteVector.fromArray(P8, w, wr + c).convertShape(VectorOperators.B2S, P16, 0);
            a0 = a0.add(pairSums(wv.mul(ShortVector.fromArray(P16, x, x0 + c))));
            a1 = a1.add(pairSums(wv.mul(ShortVector.fromArray(P16, x, x1 + c))));
            a2 = a2.add(pairSums(wv.mul(ShortVector.fromArray(P16, x, x2 + c))));
            a3 = a3.add(pairSums(wv.mul(ShortVector.fromArray(P16, x, x3 + c))));
        }
        int s0 = a0.reduceLanes(VectorOperators.ADD), s1 = a1.reduceLanes(VectorOperators.ADD);
        int s2 = a2.reduceLanes(VectorOperators.ADD), s3 = a3.reduceLanes(VectorOperators.ADD);
        for (int c = bound; c < C; c++) {
            int wc = w[wr + c];
            s0 += wc * x[x0 + c];
            s1 += wc * x[x1 + c];
            s2 += wc * x[x2 + c];
            s3 += wc * x[x3 + c];
        }
        acc[n * OC + o] = s0;
        acc[(n + 1) * OC + o] = s1;
        acc[(n + 2) * OC + o] = s2;
        acc[(n + 3) * OC + o] = s3;
    }

    /** The exact sum of row x0 against weight row wr. */
    private static int int8Dot(short[] x, int x0, byte[] w, int wr, int C) {
        int L = P16.length(), bound = C - C % L;
        IntVector a = IntVector.zero(P32);
        for (int c = 0; c < bound; c += L) {
            ShortVector wv = (ShortVector) ByteVector.fromArray(P8, w, wr + c).convertShape(VectorOperators.B2S, P16, 0);
            a = a.add(pairSums(wv.mul(ShortVector.fromArray(P16, x, x0 + c))));
        }
        int s = a.reduceLanes(VectorOperators.ADD);
        for (int c = bound; c < C; c++) {
            s += w[wr + c] * x[x0 + c];
        }
        return s;
    }

    /**
     * The sums of neighbouring 16-bit lanes as 32-bit lanes: each int lane holds two products, the low one
     * sign-extended by a left and an arithmetic right shift, the high one by an arithmetic right shift.
     */
    private static IntVector pairSums(ShortVector p) {
        IntVector i = p.reinterpretAsInts();
        return i.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                .add(i.lanewise(VectorOperators.ASHR, 16));
    }

    /**
     * out[n·OC + o] = Σ_c x[xOff + n·C + c]·w[o·C + c], for n < N, o < OC. Rows of x go in pairs, so that each
     * weight vector is loaded once for two of them (verification's N = k + 1 rows were bound by loads); every
     * row keeps its own accumulator and the same order of operations as a row computed alone.
     */
    // LANES_INLINE: each row's lanes are summed by Lanes.sum's rotations written out here (the same adds, the same
    // bits): Lanes.sum called per row was compiled on its own and took its vector boxed (a JFR profile of paper-85m
    // decoding: Lanes.sum the top frame in 49 of the float head's 515 samples).
    public static void dense(float[] out, float[] x, int xOff, float[] w, int N, int C, int OC, Parallel par) {
        par.forRange(OC, (long) N * C * OC, (from, to) -> {
            int bound = F.loopBound(C);
            for (int o = from; o < to; o++) {
                int wr = o * C;
                int n = 0;
                for (; n + 1 < N; n += 2) {
                    int x0 = xOff + n * C, x1 = x0 + C;
                    FloatVector a0 = FloatVector.zero(F), a1 = a0;
                    int c = 0;
                    for (; c < bound; c += F.length()) {
                        FloatVector wv = FloatVector.fromArray(F, w, wr + c);
                        a0 = FloatVector.fromArray(F, x, x0 + c).fma(wv, a0);
                        a1 = FloatVector.fromArray(F, x, x1 + c).fma(wv, a1);
                    }
                    for (int h = F.length() / 2; h >= 1; h /= 2) { // Lanes.sum written out: see LANES_INLINE
                        a0 = a0.add(a0.rearrange(Lanes.rotation(h)));
                        a1 = a1.add(a1.rearrange(Lanes.rotation(h)));
                    }
                    float s0 = a0.lane(0), s1 = a1.lane(0);
                    for (; c < C; c++) {
                        s0 += x[x0 + c] * w[wr + c];
                        s1 += x[x1 + c] * w[wr + c];
                    }
                    out[n * OC + o] = s0;
                    out[(n + 1) * OC + o] = s1;
                }
                if (n < N) {
                    int xr = xOff + n * C;
                    FloatVector a = FloatVector.zero(F);
                    int c = 0;
                    for (; c < bound; c += F.length()) {
                        a = FloatVector.fromArray(F, x, xr + c).fma(FloatVector.fromArray(F, w, wr + c), a);
                    }
                    for (int h = F.length() / 2; h >= 1; h /= 2) {
                        a = a.add(a.rearrange(Lanes.rotation(h)));
                    }
                    float s = a.lane(0);
                    for (; c < C; c++) {
                        s += x[xr + c] * w[wr + c];
                    }
                    out[n * OC + o] = s;
                }
            }
        });
    }
}
