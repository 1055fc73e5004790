package bitskip.model.infer;

import bitskip.kernels.TernaryPack;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The ternary GEMV on the i2_g128 layout of {@link TernaryPack} as the file stores it (the kernel of
 * {@link PackedGemm#ternary} where no {@link TernaryLut} layout is given): int8 activation codes (held as shorts)
 * times the packed weights, int32 results, bit-exact against the scalar reference
 * {@code bitskip.kernels.TernaryMatmul#forward}. One group of 128 columns is 32 bytes = 16 little-endian 16-bit
 * words; field p of every word is decoded at once by a left shift and an arithmetic right shift (the
 * two's-complement 2-bit field becomes -1, 0 or +1), multiplied by 16 consecutive activations and added into
 * 16-bit lanes. Each lane gains at most 8·127 per group, so the 16-bit lanes are flushed into 32-bit sums every
 * 32 groups (32·1016 = 32512 < 2^15): the sum is exact.
 */
final class TernaryI2 {
    private TernaryI2() {}

    /** The narrow shape: one group of 128 columns (16 words) per vector. */
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    // Weight bytes are loaded as bytes and reinterpreted as shorts (ShortVector.fromByteArray is gone after
    // JDK 19): that reads the words in the native order, and the layout's words are little-endian.
    private static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Byte> B512 = ByteVector.SPECIES_512;
    static {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new ExceptionInInitializerError("the packed ternary GEMV reads i2_g128 words as little-endian; "
                    + "this platform is big-endian");
        }
    }
    /**
     * The wide shape: k = lanes/16 consecutive groups per vector (k = 2 with AVX-512), so every shift, multiply
     * and add decodes twice the weights. -Dbitskip.gemv.bits=256 keeps the narrow shape (for side-by-side runs).
     */
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Short> W512 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    private static final int WIDE_LANES = 32;
    static final VectorSpecies<Short> WIDE = wideSpecies(Integer.getInteger("bitskip.gemv.bits", 0));
    /** Groups of 128 columns between two flushes of the 16-bit accumulators. */
    private static final int FLUSH = 32;

    static VectorSpecies<Short> wideSpecies(int bits) {
        if (bits == 256) {
            return S;
        }
        if (bits != 0 && bits != 512) {
            throw new IllegalArgumentException("bitskip.gemv.bits must be 256 or 512, got " + bits);
        }
        return bits == 512 || ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 512 ? W512 : S;
    }

    /**
     * Reorders each row of activation codes so that one wide load of k groups' weights (k·16 words: group i's
     * words in lanes 16i..16i+15) meets its activations in one contiguous load per 2-bit field p:
     * qi[b·128k + p·16k + 16i + j] = q[(b·k + i)·128 + 16p + j]. Groups past the last whole block of k stay in place.
     */
    static void interleave(short[] qi, short[] q, int N, int Cp, int k) {
        int groups = Cp / TernaryPack.GROUP, blocks = groups / k;
        for (int n = 0; n < N; n++) {
            int row = n * Cp;
            for (int b = 0; b < blocks; b++) {
                for (int i = 0; i < k; i++) {
                    for (int p = 0; p < 8; p++) {
                        System.arraycopy(q, row + (b * k + i) * 128 + 16 * p, qi, row + b * 128 * k + p * 16 * k + 16 * i, 16);
                    }
                }
            }
            int done = blocks * k * 128;
            System.arraycopy(q, row + done, qi, row + done, Cp - done);
        }
    }

    static void ternaryRows(int[] acc, short[] q, byte[] packed, int N, int Cp, int OC, int from, int to, int k) {
        int rb = Cp / 4;
        int groups = Cp / TernaryPack.GROUP;
        int wideGroups = k > 1 ? groups / k * k : 0;
        // the wide and the narrow pass in separate loop nests: with both dots in one nest C2 compiled the wide
        // one ~30% slower (measured: 10.5 against 14.8 GB/s per thread on a 16384² GEMV)
        if (wideGroups > 0) {
            wideRows(acc, q, packed, N, Cp, OC, from, to, wideGroups);
        }
        if (wideGroups < groups) {
            for (int o = from; o < to; o++) {
                for (int n = 0; n < N; n++) {
                    int dot = rowDot(q, n * Cp, packed, o * rb, wideGroups, groups);
                    acc[n * OC + o] = wideGroups > 0 ? acc[n * OC + o] + dot : dot;
                }
            }
        }
    }

    /**
     * acc[n·OC + o] = the wide-shape dot over groups [0, wideGroups), for o in [from, to), n < N. Rows of q go in
     * fours, then pairs (each weight vector's fields decoded once for all rows of a four or a pair: verification's
     * k + 1 rows and prefill); an odd last row (decoding's only one) goes against weight rows in fours, each
     * activation vector loaded once for four of them and the four sums reduced after one shared loop: with one
     * weight row per call a row of 512 columns (two steps) spent about as long on its loop's entry and exit and on
     * reducing its lanes as on its products (a 32768 × 512 GEMV ran at 12 GB/s where 1024 × 16384 ran at 21).
     * Exact integer sums, so the grouping never changes a bit.
     */
    private static void wideRows(int[] acc, short[] q, byte[] packed, int N, int Cp, int OC, int from, int to, int wideGroups) {
        int rb = Cp / 4, paired = N - N % 2;
        if (paired > 0) {
            for (int o = from; o < to; o++) {
                int n = 0;
                for (; n + 3 < paired; n += 4) {
                    rowDotWide4(acc, q, n, Cp, packed, o * rb, wideGroups, OC, o);
                }
                for (; n + 1 < paired; n += 2) {
                    long sums = rowDotWide2(q, n * Cp, Cp, packed, o * rb, wideGroups);
                    acc[n * OC + o] = (int) (sums >> 32);
                    acc[(n + 1) * OC + o] = (int) sums;
                }
            }
        }
        if (paired < N) {
            int n = N - 1, o = from;
            for (; o + 3 < to; o += 4) {
                rowDotWideOut4(acc, q, n * Cp, packed, o * rb, rb, wideGroups, n * OC + o);
            }
            for (; o < to; o++) {
                acc[n * OC + o] = rowDotWide(q, n * Cp, packed, o * rb, wideGroups);
            }
        }
    }

    /** Σ over groups [g0, g1) with the narrow shape, one group per step. */
    private static int rowDot(short[] q, int qrow, byte[] packed, int wrow, int g0, int g1) {
        int total = 0;
        int g = g0;
        while (g < g1) {
            int end = Math.min(g1, g + FLUSH);
            ShortVector a = ShortVector.zero(S);
            for (; g < end; g++) {
                ShortVector w = ByteVector.fromArray(B256, packed, wrow + g * 32).reinterpretAsShorts();
                int x = qrow + g * TernaryPack.GROUP; // the eight fields written out: see FIELDS_INLINE
                a = a.add(w.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(S, q, x)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(S, q, x + 16)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 10).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(S, q, x + 32)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(S, q, x + 48)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(S, q, x + 64)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(S, q, x + 80)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(S, q, x + 96)));
                a = a.add(w.lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(S, q, x + 112)));
            }
            IntVector lo = (IntVector) a.convertShape(VectorOperators.S2I, I, 0);
            IntVector hi = (IntVector) a.convertShape(VectorOperators.S2I, I, 1);
            total += lo.add(hi).reduceLanes(VectorOperators.ADD);
        }
        return total;
    }

    /**
     * Σ over groups [0, groups) (a multiple of k) with the wide shape, k groups per step, against the
     * interleaved activations. Each lane still holds one word position of one group, so it gains at most
     * 8·127 per step and the same flush interval keeps the 16-bit sums exact.
     */
    private static int rowDotWide(short[] q, int qrow, byte[] packed, int wrow, int groups) {
        int k = WIDE_LANES / 16;
        int total = 0;
        int st = 0, steps = groups / k;
        while (st < steps) {
            int end = Math.min(steps, st + FLUSH);
            ShortVector a = ShortVector.zero(W512);
            for (; st < end; st++) {
                ShortVector w = ByteVector.fromArray(B512, packed, wrow + st * 32 * k).reinterpretAsShorts();
                int x = qrow + st * TernaryPack.GROUP * k, L = WIDE_LANES; // see FIELDS_INLINE
                a = a.add(w.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(W512, q, x)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(W512, q, x + L)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 10).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(W512, q, x + 2 * L)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(W512, q, x + 3 * L)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(W512, q, x + 4 * L)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(W512, q, x + 5 * L)));
                a = a.add(w.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(W512, q, x + 6 * L)));
                a = a.add(w.lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(W512, q, x + 7 * L)));
            }
            IntVector lo = (IntVector) a.convertShape(VectorOperators.S2I, I512, 0);
            IntVector hi = (IntVector) a.convertShape(VectorOperators.S2I, I512, 1);
            total += lo.add(hi).reduceLanes(VectorOperators.ADD);
        }
        return total;
    }

    /** {@link #rowDotWide} of rows qrow and qrow + Cp against one weight row, as (first << 32) | second. */
    private static long rowDotWide2(short[] q, int qrow, int Cp, byte[] packed, int wrow, int groups) {
        int k = WIDE_LANES / 16;
        int t0 = 0, t1 = 0;
        int st = 0, steps = groups / k;
        while (st < steps) {
            int end = Math.min(steps, st + FLUSH);
            ShortVector a0 = ShortVector.zero(W512), a1 = a0;
            for (; st < end; st++) {
                ShortVector w = ByteVector.fromArray(B512, packed, wrow + st * 32 * k).reinterpretAsShorts(), f;
                int x0 = qrow + st * TernaryPack.GROUP * k, x1 = x0 + Cp, L = WIDE_LANES; // see FIELDS_INLINE
                f = w.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1)));
                f = w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + L)));
                f = w.lanewise(VectorOperators.LSHL, 10).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 2 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 2 * L)));
                f = w.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 3 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 3 * L)));
                f = w.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 4 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 4 * L)));
                f = w.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 5 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 5 * L)));
                f = w.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 6 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 6 * L)));
                f = w.lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 7 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 7 * L)));
            }
            IntVector v0 = a0.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t0 += v0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v0.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
            IntVector v1 = a1.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t1 += v1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v1.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
        }
        return ((long) t0 << 32) | (t1 & 0xFFFFFFFFL);
    }

    /** {@link #rowDotWide} of rows n .. n+3 of q (row length Cp) against weight row wrow, into acc's column o. */
    private static void rowDotWide4(int[] acc, short[] q, int n, int Cp, byte[] packed, int wrow, int groups, int OC, int o) {
        int k = WIDE_LANES / 16;
        int t0 = 0, t1 = 0, t2 = 0, t3 = 0;
        int st = 0, steps = groups / k;
        while (st < steps) {
            int end = Math.min(steps, st + FLUSH);
            ShortVector a0 = ShortVector.zero(W512), a1 = a0, a2 = a0, a3 = a0;
            for (; st < end; st++) {
                ShortVector w = ByteVector.fromArray(B512, packed, wrow + st * 32 * k).reinterpretAsShorts(), f;
                int x0 = n * Cp + st * TernaryPack.GROUP * k, x1 = x0 + Cp, x2 = x1 + Cp, x3 = x2 + Cp, L = WIDE_LANES; // FIELDS_INLINE
                f = w.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1)));
                a2 = a2.add(f.mul(ShortVector.fromArray(W512, q, x2)));
                a3 = a3.add(f.mul(ShortVector.fromArray(W512, q, x3)));
                f = w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + L)));
                a2 = a2.add(f.mul(ShortVector.fromArray(W512, q, x2 + L)));
                a3 = a3.add(f.mul(ShortVector.fromArray(W512, q, x3 + L)));
                f = w.lanewise(VectorOperators.LSHL, 10).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 2 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 2 * L)));
                a2 = a2.add(f.mul(ShortVector.fromArray(W512, q, x2 + 2 * L)));
                a3 = a3.add(f.mul(ShortVector.fromArray(W512, q, x3 + 2 * L)));
                f = w.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 3 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 3 * L)));
                a2 = a2.add(f.mul(ShortVector.fromArray(W512, q, x2 + 3 * L)));
                a3 = a3.add(f.mul(ShortVector.fromArray(W512, q, x3 + 3 * L)));
                f = w.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 4 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 4 * L)));
                a2 = a2.add(f.mul(ShortVector.fromArray(W512, q, x2 + 4 * L)));
                a3 = a3.add(f.mul(ShortVector.fromArray(W512, q, x3 + 4 * L)));
                f = w.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 5 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 5 * L)));
                a2 = a2.add(f.mul(ShortVector.fromArray(W512, q, x2 + 5 * L)));
                a3 = a3.add(f.mul(ShortVector.fromArray(W512, q, x3 + 5 * L)));
                f = w.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 6 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 6 * L)));
                a2 = a2.add(f.mul(ShortVector.fromArray(W512, q, x2 + 6 * L)));
                a3 = a3.add(f.mul(ShortVector.fromArray(W512, q, x3 + 6 * L)));
                f = w.lanewise(VectorOperators.ASHR, 14);
                a0 = a0.add(f.mul(ShortVector.fromArray(W512, q, x0 + 7 * L)));
                a1 = a1.add(f.mul(ShortVector.fromArray(W512, q, x1 + 7 * L)));
                a2 = a2.add(f.mul(ShortVector.fromArray(W512, q, x2 + 7 * L)));
                a3 = a3.add(f.mul(ShortVector.fromArray(W512, q, x3 + 7 * L)));
            }
            IntVector v0 = a0.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t0 += v0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v0.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
            IntVector v1 = a1.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t1 += v1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v1.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
            IntVector v2 = a2.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t2 += v2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v2.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
            IntVector v3 = a3.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t3 += v3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v3.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
        }
        acc[n * OC + o] = t0;
        acc[(n + 1) * OC + o] = t1;
        acc[(n + 2) * OC + o] = t2;
        acc[(n + 3) * OC + o] = t3;
    }

    /**
     * {@link #rowDotWide} of activation row qrow against the four weight rows from wrow (rb bytes apart), into
     * acc[out .. out + 3].
     */
    private static void rowDotWideOut4(int[] acc, short[] q, int qrow, byte[] packed, int wrow, int rb, int groups, int out) {
        int k = WIDE_LANES / 16;
        int t0 = 0, t1 = 0, t2 = 0, t3 = 0;
        int st = 0, steps = groups / k;
        while (st < steps) {
            int end = Math.min(steps, st + FLUSH);
            ShortVector a0 = ShortVector.zero(W512), a1 = a0, a2 = a0, a3 = a0;
            for (; st < end; st++) {
                int wo = wrow + st * 32 * k, x0 = qrow + st * TernaryPack.GROUP * k, L = WIDE_LANES; // FIELDS_INLINE
                ShortVector w0 = ByteVector.fromArray(B512, packed, wo).reinterpretAsShorts();
                ShortVector w1 = ByteVector.fromArray(B512, packed, wo + rb).reinterpretAsShorts();
                ShortVector w2 = ByteVector.fromArray(B512, packed, wo + 2 * rb).reinterpretAsShorts();
                ShortVector w3 = ByteVector.fromArray(B512, packed, wo + 3 * rb).reinterpretAsShorts(), x;
                x = ShortVector.fromArray(W512, q, x0);
                a0 = a0.add(w0.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 14).mul(x));
                a1 = a1.add(w1.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 14).mul(x));
                a2 = a2.add(w2.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 14).mul(x));
                a3 = a3.add(w3.lanewise(VectorOperators.LSHL, 14).lanewise(VectorOperators.ASHR, 14).mul(x));
                x = ShortVector.fromArray(W512, q, x0 + L);
                a0 = a0.add(w0.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 14).mul(x));
                a1 = a1.add(w1.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 14).mul(x));
                a2 = a2.add(w2.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 14).mul(x));
                a3 = a3.add(w3.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 14).mul(x));
                x = ShortVector.fromArray(W512, q, x0 + 2 * L);
                a0 = a0.add(w0.lanewise(VectorOperators.LSHL, 10).lanewise(VectorOperators.ASHR, 14).mul(x));
                a1 = a1.add(w1.lanewise(VectorOperators.LSHL, 10).lanewise(VectorOperators.ASHR, 14).mul(x));
                a2 = a2.add(w2.lanewise(VectorOperators.LSHL, 10).lanewise(VectorOperators.ASHR, 14).mul(x));
                a3 = a3.add(w3.lanewise(VectorOperators.LSHL, 10).lanewise(VectorOperators.ASHR, 14).mul(x));
                x = ShortVector.fromArray(W512, q, x0 + 3 * L);
                a0 = a0.add(w0.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 14).mul(x));
                a1 = a1.add(w1.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 14).mul(x));
                a2 = a2.add(w2.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 14).mul(x));
                a3 = a3.add(w3.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 14).mul(x));
                x = ShortVector.fromArray(W512, q, x0 + 4 * L);
                a0 = a0.add(w0.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 14).mul(x));
                a1 = a1.add(w1.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 14).mul(x));
                a2 = a2.add(w2.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 14).mul(x));
                a3 = a3.add(w3.lanewise(VectorOperators.LSHL, 6).lanewise(VectorOperators.ASHR, 14).mul(x));
                x = ShortVector.fromArray(W512, q, x0 + 5 * L);
                a0 = a0.add(w0.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 14).mul(x));
                a1 = a1.add(w1.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 14).mul(x));
                a2 = a2.add(w2.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 14).mul(x));
                a3 = a3.add(w3.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 14).mul(x));
                x = ShortVector.fromArray(W512, q, x0 + 6 * L);
                a0 = a0.add(w0.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.ASHR, 14).mul(x));
                a1 = a1.add(w1.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.ASHR, 14).mul(x));
                a2 = a2.add(w2.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.ASHR, 14).mul(x));
                a3 = a3.add(w3.lanewise(VectorOperators.LSHL, 2).lanewise(VectorOperators.ASHR, 14).mul(x));
                x = ShortVector.fromArray(W512, q, x0 + 7 * L);
                a0 = a0.add(w0.lanewise(VectorOperators.ASHR, 14).mul(x));
                a1 = a1.add(w1.lanewise(VectorOperators.ASHR, 14).mul(x));
                a2 = a2.add(w2.lanewise(VectorOperators.ASHR, 14).mul(x));
                a3 = a3.add(w3.lanewise(VectorOperators.ASHR, 14).mul(x));
            }
            IntVector v0 = a0.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t0 += v0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v0.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
            IntVector v1 = a1.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t1 += v1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v1.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
            IntVector v2 = a2.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t2 += v2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v2.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
            IntVector v3 = a3.reinterpretAsInts(); // PAIRS_BY_SHIFTS, see there
            t3 += v3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16).add(v3.lanewise(VectorOperators.ASHR, 16))
                    .reduceLanes(VectorOperators.ADD);
        }
        acc[out] = t0;
        acc[out + 1] = t1;
        acc[out + 2] = t2;
        acc[out + 3] = t3;
    }

    // PAIRS_BY_SHIFTS: the wide dots of several rows (and decoding's row against four weight rows) add up a 16-bit
    // accumulator by reading it as int lanes, each the sum of its low and high half sign-extended
    // ((v << 16) >> 16 plus v >> 16: exact), instead of widening it with convertShape(S2I) to two int vectors. In
    // some processes C2 compiled one of rowDotWide4's convertShape calls to the Vector API's Java fallback (JFR of a
    // self-speculative sweep: 161 of 853 samples there, against 6 in another process of the same command; its layers
    // took 0.33 against 0.20 ms per token). A JFR of a process with the shifts showed no fallback frame in the dots,
    // and twelve processes ran verification at 0.11-0.19 ms of layers per token. The single-row rowDotWide and the
    // narrow rowDot keep convertShape: no fallback was seen there.
    //
    // FIELDS_INLINE: the eight 2-bit fields of each word (shifted left so that the field is on top, then
    // arithmetically right by 14: -1, 0 or +1 per lane), field p against the p-th run of activations, are written
    // out in each dot with its own constant species, not put in a helper taking and returning vectors. Such a helper
    // (shared by both shapes until 1927532) was, depending on the order in which C2 compiled things, sometimes
    // compiled on its own: then every call boxed its vectors and ran the Vector API's Java fallback (JFR:
    // ShortVector.fromArray and lanewiseShiftTemplate on top, under the helper), and `tiny`, whose projections use
    // both shapes, decoded at a quarter of its speed in most processes; even the two-shift helper of one field fell
    // back that way once the first was gone (lanewiseShiftTemplate's lambda under it). Not a loop over the eight: with
    // the shift count a loop variable the wide GEMV read 12-17 GB/s against 21 written out (16384², 2 threads).
}
