package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Whole-tensor sums in double, in a fixed order that does not depend on the device: G work-items each sum
 * the terms i ≡ g (mod G) in order ({@link #partials}), then one work-item adds the G partial sums in order
 * ({@link #finish}). TornadoVM's {@code @Reduce} is not used: PoCL 3.1 computes it wrongly above 4,096
 * elements. The order differs from the reference's single running sum, so results agree with it to a
 * relative ~1e-15 rather than bit for bit (after rounding to float, as for alpha, almost always exactly).
 *
 * <p>Doubles live in the float arena as an unevaluated sum of three floats (hi, mid, lo): hi = (float) s,
 * mid = (float) (s − hi), lo = (float) (s − hi − mid), each difference exact in double, so hi + mid + lo
 * in double gives s back exactly for the magnitudes summed here.
 */
final class ReduceKernels {
    private ReduceKernels() {}

    /** Term modes of {@link #partials}. */
    static final int ABS = 0, SQUARE = 1, SQUARED_DIFFERENCE = 2, VALUE = 3, SQUARED_DEVIATION = 4;

    static void storeDouble(FloatArray m, int at, double s) {
        float hi = (float) s;
        double r = s - (double) hi;
        float mid = (float) r;
        float lo = (float) (r - (double) mid);
        m.set(at, hi);
        m.set(at + 1, mid);
        m.set(at + 2, lo);
    }

    static double loadDouble(FloatArray m, int at) {
        return (double) m.get(at) + (double) m.get(at + 1) + (double) m.get(at + 2);
    }

    /**
     * out[3g..3g+3) = Σ_{i ≡ g mod G, i &lt; n} term(i), g &lt; G, where term is |x[i]| (ABS), (double) x[i]·x[i]
     * (SQUARE, as GradClip.sumSquares), d·d with d = (double) (x[i] − y[i]) (SQUARED_DIFFERENCE, as
     * Quantize.squaredError), x[i] (VALUE), or d·d with d = (double) x[i] − t (SQUARED_DEVIATION, as
     * RoutingLoss). a = (mode, x, y, n, G, out); f = (t).
     */
    static void partials(FloatArray m, IntArray a, FloatArray f) {
        int mode = a.get(0), x = a.get(1), y = a.get(2), n = a.get(3), G = a.get(4), out = a.get(5);
        float t = f.get(0);
        for (@Parallel int g = 0; g < G; g++) {
            double s = 0.0;
            for (int i = g; i < n; i += G) {
                double term;
                if (mode == ABS) {
                    term = Math.abs(m.get(x + i));
                } else if (mode == SQUARE) {
                    double v = m.get(x + i);
                    term = v * v;
                } else if (mode == SQUARED_DIFFERENCE) {
                    double d = m.get(x + i) - m.get(y + i);
                    term = d * d;
                } else if (mode == SQUARED_DEVIATION) {
                    double d = (double) m.get(x + i) - t;
                    term = d * d;
                } else {
                    term = m.get(x + i);
                }
                s += term;
            }
            storeDouble(m, out + 3 * g, s);
        }
    }

    /**
     * One work-item: s = Σ_g partial[g] in order, then out = s as a stored double (post 0), or out[0] =
     * (float) (s/n) (post 1, a mean that a later kernel reads on the device). a = (partials, G, post, n, out).
     */
    static void finish(FloatArray m, IntArray a) {
        int partials = a.get(0), G = a.get(1), post = a.get(2), n = a.get(3), out = a.get(4);
        for (@Parallel int one = 0; one < 1; one++) {
            double s = 0.0;
            for (int g = 0; g < G; g++) {
                s += loadDouble(m, partials + 3 * g);
            }
            if (post == 0) {
                storeDouble(m, out, s);
            } else {
                m.set(out, (float) (s / n));
            }
        }
    }
}
