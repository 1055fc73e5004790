package bitskip.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Transcendental functions on float lanes built only from operations IEEE 754 defines exactly (add, multiply,
 * min, max, integer conversion of an integral value, bit shifts), so the result is the same bits whatever runs
 * the code: the interpreter, C1, C2, any JDK.
 *
 * <p>Why not {@code lanewise(VectorOperators.EXP)}: its result is not specified to the bit. C2 compiles it to
 * an intrinsic (SVML where available) while the interpreter and C1 fall back to {@code Math.exp} per lane, and
 * the two differ in the last bit. A method's first calls run interpreted and later ones compiled, so the same
 * training step gave different losses in different runs (step 1 of a seed-7 {@code tiny} run: 14.60354946924799
 * and 14.603549469389659).
 */
public final class VectorMath {
    private VectorMath() {}

    private static final float LOG2E = 1.44269504088896341f;
    /** ln 2 split in two so that k·LN2_HI is exact for the k that occur (Cody and Waite). */
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** exp(x) overflows float above this and is below the smallest normal float under the lower bound. */
    private static final float HI = 88.3762626647949f;
    private static final float LO = -87.3365447505531f;
    /** 1.5·2^23: (v + M) − M rounds v to an integer, half to even, for |v| <= 2^22. */
    private static final float RINT_MAGIC = 12582912.0f;

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    // The constants as vectors built once. Same operations and bits as the scalar overloads (x.mul(c) is
    // x.mul(broadcast(c))), but each scalar overload inlines a broadcast too, and with them this method alone
    // filled C2's (JDK 17) inlining node budget: a loop around exp then compiled its next vector load or store
    // as a call that boxes the vector (gigabytes of garbage per training step, measured).
    private static final FloatVector V_LO = FloatVector.broadcast(S, LO), V_HI = FloatVector.broadcast(S, HI),
            V_LOG2E = FloatVector.broadcast(S, LOG2E), V_RINT = FloatVector.broadcast(S, RINT_MAGIC),
            V_LN2_HI = FloatVector.broadcast(S, LN2_HI), V_LN2_LO = FloatVector.broadcast(S, LN2_LO),
            P0 = FloatVector.broadcast(S, 1.9875691500e-4f), P1 = FloatVector.broadcast(S, 1.3981999507e-3f),
            P2 = FloatVector.broadcast(S, 8.3334519073e-3f), P3 = FloatVector.broadcast(S, 4.1665795894e-2f),
            P4 = FloatVector.broadcast(S, 1.6666665459e-1f), P5 = FloatVector.broadcast(S, 5.0000001201e-1f),
            ONE = FloatVector.broadcast(S, 1.0f), ZERO = FloatVector.zero(S),
            INF = FloatVector.broadcast(S, Float.POSITIVE_INFINITY);
    private static final IntVector EXP_BIAS = IntVector.broadcast(VectorSpecies.of(int.class, S.vectorShape()),
            127 - 0x4B400000);

    /**
     * exp on every lane of a vector of the preferred species, within 2 ulp of {@code Math.exp} for normal results
     * (Cephes' expf polynomial on [−ln2/2, ln2/2], then a scale by 2^k built in the exponent bits). Lanes below
     * {@value #LO} give 0 (where {@code Math.exp} gives a subnormal), above {@value #HI} +∞; NaN stays NaN.
     */
    public static FloatVector exp(FloatVector x) {
        return scaledPolynomial(x.max(V_LO).min(V_HI))
                .blend(ZERO, x.compare(VectorOperators.LT, V_LO)).blend(INF, x.compare(VectorOperators.GT, V_HI));
    }

    /**
     * {@link #exp} for lanes known to be ≤ 0, −∞ or NaN (a softmax's x − max): the same bits there, without the
     * upper clamp and the +∞ blend, which never apply to such lanes. Fewer vector operations keep a loop around
     * it within C2's inlining node budget (see {@link #exp}).
     */
    public static FloatVector expNonPositive(FloatVector x) {
        return scaledPolynomial(x.max(V_LO)).blend(ZERO, x.compare(VectorOperators.LT, V_LO));
    }

    /** exp of lanes already clamped into [{@value #LO}, {@value #HI}]: the polynomial times 2^k. */
    private static FloatVector scaledPolynomial(FloatVector xc) {
        FloatVector k = xc.mul(V_LOG2E).add(V_RINT).sub(V_RINT);
        FloatVector r = xc.sub(k.mul(V_LN2_HI)).sub(k.mul(V_LN2_LO));
        FloatVector p = r.mul(P0).add(P1)
                .mul(r).add(P2)
                .mul(r).add(P3)
                .mul(r).add(P4)
                .mul(r).add(P5)
                .mul(r.mul(r)).add(r).add(ONE);
        // 2^k in the exponent bits. Not k.convert(F2I): JDK 17 has no vector instruction for it and falls back to
        // a per-lane loop that allocates arrays (measured 50x slower). k is an integer in [-126, 128], so
        // k + 1.5·2^23 is exact and its bits are 0x4B400000 + k.
        IntVector bits = k.add(V_RINT).reinterpretAsInts().add(EXP_BIAS).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }
}
