package bitskip.engine.cpu;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;

/**
 * Sums of a vector's lanes in one fixed order, so that a result never depends on the JDK or on whether the
 * code runs interpreted or compiled. {@code reduceLanes(ADD)} leaves its order unspecified, and JDK 25
 * does use different orders in the interpreter and in C2: the same step gave losses 4e-11 apart between a
 * cold and a warm run. Here the upper half is added to the lower half, then the upper quarter to the lower
 * quarter, and so on (lane-wise adds, each exactly defined by IEEE 754), and lane 0 is the sum.
 */
public final class Lanes {
    private Lanes() {}

    public static float sum(FloatVector v) {
        for (int h = v.length() / 2; h >= 1; h /= 2) {
            v = v.add(v.slice(h));
        }
        return v.lane(0);
    }

    public static double sum(DoubleVector v) {
        for (int h = v.length() / 2; h >= 1; h /= 2) {
            v = v.add(v.slice(h));
        }
        return v.lane(0);
    }
}
