package bitskip.engine.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The stages of the Walsh–Hadamard butterfly whose distance h is below the vector length (h = 1, 2, .., L/2),
 * done inside one vector of the preferred species: each lane's partner (i XOR h) brought over by a constant
 * permute, then a + b on the lanes without bit h and a − b on those with it. These are exactly the scalar
 * butterfly's operations (lane j gets x + y and lane j + h gets x − y, with x = a[j], y = a[j + h]), stage after
 * stage in the same order, so the result is bit-identical to {@code kernels.Hadamard}'s loops; without it those
 * stages ran one float at a time.
 */
public final class VectorFwht {
    private VectorFwht() {}

    public static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /** For the stages h = 1, 2, .., L/2 inside one vector: lane i's partner i XOR h, and the lanes with bit h set. */
    @SuppressWarnings("unchecked")
    private static final VectorShuffle<Float>[] PARTNER = new VectorShuffle[Integer.numberOfTrailingZeros(S.length())];
    @SuppressWarnings("unchecked")
    private static final VectorMask<Float>[] UPPER = new VectorMask[PARTNER.length];

    static {
        for (int k = 0; k < PARTNER.length; k++) {
            int h = 1 << k;
            PARTNER[k] = VectorShuffle.fromOp(S, i -> i ^ h);
            boolean[] upper = new boolean[S.length()];
            for (int i = 0; i < upper.length; i++) {
                upper[i] = (i & h) != 0;
            }
            UPPER[k] = VectorMask.fromArray(S, upper, 0);
        }
    }

    /**
     * The stages h = 1 .. L/2 applied in place to every whole vector of a[off .. off + n) (n a multiple of L): the
     * same operations as {@link #innerStages(FloatVector)}, with the loop here so that no vector crosses a call.
     * A helper that takes and returns a vector, compiled by C2 on its own before its callers, runs the Vector API's
     * Java fallback (seen in decoding: {@code rearrangeTemplate}'s lambda under {@code innerStages}).
     */
    public static void innerStages(float[] a, int off, int n) {
        for (int j = off; j < off + n; j += S.length()) {
            FloatVector v = FloatVector.fromArray(S, a, j);
            for (int k = 0; k < PARTNER.length; k++) {
                FloatVector p = v.rearrange(PARTNER[k]);
                v = v.add(p).blend(p.sub(v), UPPER[k]);
            }
            v.intoArray(a, j);
        }
    }

    /** The stages h = 1 .. L/2 applied to v (L consecutive elements of a row starting at a multiple of L). */
    public static FloatVector innerStages(FloatVector v) {
        for (int k = 0; k < PARTNER.length; k++) {
            FloatVector p = v.rearrange(PARTNER[k]);
            v = v.add(p).blend(p.sub(v), UPPER[k]);
        }
        return v;
    }
}
