package bitskip.engine.cpu;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Sums of a vector's lanes in one fixed order, so that a result never depends on the JDK or on whether the
 * code runs interpreted or compiled. {@code reduceLanes(ADD)} leaves its order unspecified, and JDK 25
 * does use different orders in the interpreter and in C2: the same step gave losses 4e-11 apart between a
 * cold and a warm run. Here the upper half is added to the lower half, then the upper quarter to the lower
 * quarter, and so on (lane-wise adds, each exactly defined by IEEE 754), and lane 0 is the sum.
 *
 * <p>The halves are brought down by constant rotations (lane i takes lane i + h mod L): the lanes below h,
 * the only ones read later, get exactly what a shift would give them. A shift ({@code slice}) builds its shuffle
 * and checks its indexes on every call in JDK 17; a constant shuffle is one permute instruction.
 */
public final class Lanes {
    private Lanes() {}

    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
    private static final VectorShuffle<Float>[] FLOAT_ROTATIONS = rotations(FS);
    private static final VectorShuffle<Double>[] DOUBLE_ROTATIONS = rotations(DS);

    /** rotations[log2(h)] moves lane i + h mod L to lane i, for h = 1, 2, ..., L/2. */
    @SuppressWarnings("unchecked")
    private static <E> VectorShuffle<E>[] rotations(VectorSpecies<E> s) {
        int L = s.length();
        VectorShuffle<E>[] r = new VectorShuffle[Math.max(1, Integer.numberOfTrailingZeros(L))];
        for (int h = 1; h < L; h *= 2) {
            int shift = h;
            r[Integer.numberOfTrailingZeros(h)] = VectorShuffle.fromOp(s, i -> (i + shift) % L);
        }
        return r;
    }

    /**
     * The constant rotation {@link #sum} uses at step h (lane i takes lane i + h mod L; h = L/2, L/4, ..., 1) of the
     * preferred float species, for a caller that writes the sum out in its own loop: a hot loop calling sum, which
     * C2 compiled on its own, passed every vector boxed (decoding's q·k dots, seen in a JFR profile).
     */
    public static VectorShuffle<Float> rotation(int h) {
        return FLOAT_ROTATIONS[Integer.numberOfTrailingZeros(h)];
    }

    public static float sum(FloatVector v) {
        if (v.species() == FS) {
            for (int h = FS.length() / 2; h >= 1; h /= 2) {
                v = v.add(v.rearrange(FLOAT_ROTATIONS[Integer.numberOfTrailingZeros(h)]));
            }
            return v.lane(0);
        }
        for (int h = v.length() / 2; h >= 1; h /= 2) {
            v = v.add(v.slice(h));
        }
        return v.lane(0);
    }

    public static double sum(DoubleVector v) {
        if (v.species() == DS) {
            for (int h = DS.length() / 2; h >= 1; h /= 2) {
                v = v.add(v.rearrange(DOUBLE_ROTATIONS[Integer.numberOfTrailingZeros(h)]));
            }
            return v.lane(0);
        }
        for (int h = v.length() / 2; h >= 1; h /= 2) {
            v = v.add(v.slice(h));
        }
        return v.lane(0);
    }
}
