package bitskip.model.infer;

import bitskip.kernels.TernaryPack;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fast paths of inference on the CPU, with the Vector API:
 * <ul>
 *   <li>{@link #ternary}: int8 activation codes (held as shorts) times ternary weights packed in the
 *   i2_g128 layout of {@link TernaryPack}, int32 results, bit-exact against the scalar reference
 *   {@code bitskip.kernels.TernaryMatmul#forward}. One group of 128 columns is 32 bytes = 16 little-endian
 *   16-bit words; field p of every word is decoded at once by a left shift and an arithmetic right shift
 *   (the two's-complement 2-bit field becomes -1, 0 or +1), multiplied by 16 consecutive activations and
 *   added into 16-bit lanes. Each lane gains at most 8·127 per group, so the 16-bit lanes are flushed into
 *   32-bit sums every 32 groups (32·1016 = 32512 < 2^15): the sum is exact.</li>
 *   <li>{@link #dense}: float (N, C) times (OC, C)ᵀ for the LM head, with a fixed lane order per row (the
 *   result of a row does not depend on N or on the thread count).</li>
 * </ul>
 * Both are split over output rows by {@link Parallel}.
 */
public final class PackedGemm {
    private PackedGemm() {}

    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Groups of 128 columns between two flushes of the 16-bit accumulators. */
    private static final int FLUSH = 32;

    /**
     * acc[n·OC + o] = Σ_c code[o, c]·q[n·Cp + c] for n < N, o < OC. q holds N rows of Cp shorts (Cp a multiple
     * of 128, the padding columns zero or anything: their codes are 0); packed is OC rows of Cp/4 bytes.
     */
    public static void ternary(int[] acc, short[] q, byte[] packed, int N, int Cp, int OC, Parallel par) {
        if (Cp % TernaryPack.GROUP != 0) {
            throw new IllegalArgumentException("Cp = " + Cp + " must be a multiple of " + TernaryPack.GROUP);
        }
        if (q.length < (long) N * Cp || packed.length < (long) OC * (Cp / 4) || acc.length < (long) N * OC) {
            throw new IllegalArgumentException("array too short for N=" + N + " Cp=" + Cp + " OC=" + OC);
        }
        par.forRange(OC, (long) N * Cp * OC / 4, (from, to) -> ternaryRows(acc, q, packed, N, Cp, OC, from, to));
    }

    static void ternaryRows(int[] acc, short[] q, byte[] packed, int N, int Cp, int OC, int from, int to) {
        int rb = Cp / 4;
        int groups = Cp / TernaryPack.GROUP;
        for (int o = from; o < to; o++) {
            int wrow = o * rb;
            for (int n = 0; n < N; n++) {
                acc[n * OC + o] = rowDot(q, n * Cp, packed, wrow, groups);
            }
        }
    }

    private static int rowDot(short[] q, int qrow, byte[] packed, int wrow, int groups) {
        int total = 0;
        int g = 0;
        while (g < groups) {
            int end = Math.min(groups, g + FLUSH);
            ShortVector a = ShortVector.zero(S);
            for (; g < end; g++) {
                ShortVector w = ShortVector.fromByteArray(S, packed, wrow + g * 32, ByteOrder.LITTLE_ENDIAN);
                int x = qrow + g * TernaryPack.GROUP;
                a = a.add(field(w, 14).mul(ShortVector.fromArray(S, q, x)));
                a = a.add(field(w, 12).mul(ShortVector.fromArray(S, q, x + 16)));
                a = a.add(field(w, 10).mul(ShortVector.fromArray(S, q, x + 32)));
                a = a.add(field(w, 8).mul(ShortVector.fromArray(S, q, x + 48)));
                a = a.add(field(w, 6).mul(ShortVector.fromArray(S, q, x + 64)));
                a = a.add(field(w, 4).mul(ShortVector.fromArray(S, q, x + 80)));
                a = a.add(field(w, 2).mul(ShortVector.fromArray(S, q, x + 96)));
                a = a.add(w.lanewise(VectorOperators.ASHR, 14).mul(ShortVector.fromArray(S, q, x + 112)));
            }
            IntVector lo = (IntVector) a.convertShape(VectorOperators.S2I, I, 0);
            IntVector hi = (IntVector) a.convertShape(VectorOperators.S2I, I, 1);
            total += lo.add(hi).reduceLanes(VectorOperators.ADD);
        }
        return total;
    }

    /** The 2-bit field whose low bit is at bit 14 - left, sign-extended: -1, 0 or +1 in every lane. */
    private static ShortVector field(ShortVector w, int left) {
        return w.lanewise(VectorOperators.LSHL, left).lanewise(VectorOperators.ASHR, 14);
    }

    /** out[n·OC + o] = Σ_c x[xOff + n·C + c]·w[o·C + c], for n < N, o < OC. */
    public static void dense(float[] out, float[] x, int xOff, float[] w, int N, int C, int OC, Parallel par) {
        par.forRange(OC, (long) N * C * OC, (from, to) -> {
            int bound = F.loopBound(C);
            for (int o = from; o < to; o++) {
                int wr = o * C;
                for (int n = 0; n < N; n++) {
                    int xr = xOff + n * C;
                    FloatVector a = FloatVector.zero(F);
                    int c = 0;
                    for (; c < bound; c += F.length()) {
                        a = FloatVector.fromArray(F, x, xr + c).fma(FloatVector.fromArray(F, w, wr + c), a);
                    }
                    float s = a.reduceLanes(VectorOperators.ADD);
                    for (; c < C; c++) {
                        s += x[xr + c] * w[wr + c];
                    }
                    out[n * OC + o] = s;
                }
            }
        });
    }
}
