package bitskip.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

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

    /**
     * exp on every lane, within 2 ulp of {@code Math.exp} for normal results (Cephes' expf polynomial on
     * [−ln2/2, ln2/2], then a scale by 2^k built in the exponent bits). Lanes below {@value #LO} give 0 (where
     * {@code Math.exp} gives a subnormal), above {@value #HI} +∞; NaN stays NaN.
     */
    public static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(LO).min(HI);
        FloatVector k = xc.mul(LOG2E).add(RINT_MAGIC).sub(RINT_MAGIC);
        FloatVector r = xc.sub(k.mul(LN2_HI)).sub(k.mul(LN2_LO));
        FloatVector p = r.mul(1.9875691500e-4f).add(1.3981999507e-3f)
                .mul(r).add(8.3334519073e-3f)
                .mul(r).add(4.1665795894e-2f)
                .mul(r).add(1.6666665459e-1f)
                .mul(r).add(5.0000001201e-1f)
                .mul(r.mul(r)).add(r).add(1.0f);
        IntVector bits = ((IntVector) k.convert(VectorOperators.F2I, 0))
                .add(127).lanewise(VectorOperators.LSHL, 23);
        FloatVector y = p.mul(bits.reinterpretAsFloats());
        VectorMask<Float> under = x.compare(VectorOperators.LT, LO);
        VectorMask<Float> over = x.compare(VectorOperators.GT, HI);
        return y.blend(0.0f, under).blend(Float.POSITIVE_INFINITY, over);
    }
}
