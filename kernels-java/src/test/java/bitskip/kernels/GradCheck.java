package bitskip.kernels;

import static org.junit.jupiter.api.Assertions.fail;

import java.util.Random;
import java.util.function.DoubleSupplier;

/**
 * Central finite differences in double precision, for the double-precision twins of the kernels
 * (package {@code bitskip.kernels.f64}, generated from the same source at build time).
 *
 * <p>A test forms a scalar loss {@code L = Σ out · R} with a fixed random R, runs the twin's backward with
 * {@code dout = R}, and hands each input and its analytic gradient to {@link #check}. The check perturbs
 * every element by ±h, re-evaluates the loss, and fails with the worst element if any differs by more than
 * {@code atol + rtol·|numeric|}.
 */
public final class GradCheck {
    public static final double H = 1e-6;
    public static final double RTOL = 1e-6;
    public static final double ATOL = 1e-8;

    private GradCheck() {}

    /**
     * @param name     what is checked, for the message ("LayerNorm dinp")
     * @param x        the input the loss reads; perturbed in place and restored
     * @param analytic the analytic gradient of the loss with respect to x
     * @param loss     re-runs the forward pass and returns the scalar loss
     */
    public static void check(String name, double[] x, double[] analytic, DoubleSupplier loss) {
        check(name, x, analytic, loss, RTOL, ATOL);
    }

    public static void check(String name, double[] x, double[] analytic, DoubleSupplier loss, double rtol, double atol) {
        int worst = -1;
        double worstExcess = 0.0;
        double worstNum = 0.0;
        for (int i = 0; i < x.length; i++) {
            double saved = x[i];
            x[i] = saved + H;
            double lp = loss.getAsDouble();
            x[i] = saved - H;
            double lm = loss.getAsDouble();
            x[i] = saved;
            double num = (lp - lm) / (2 * H);
            double excess = Math.abs(num - analytic[i]) - (atol + rtol * Math.abs(num));
            if (excess > worstExcess) {
                worstExcess = excess;
                worst = i;
                worstNum = num;
            }
        }
        if (worst >= 0) {
            fail(String.format("%s: gradient differs from central finite differences at element %d of %d: "
                    + "analytic %.12g, numeric %.12g (|diff| %.3g > atol %.1g + rtol %.1g*|numeric|)",
                    name, worst, x.length, analytic[worst], worstNum, Math.abs(worstNum - analytic[worst]),
                    atol, rtol));
        }
    }

    /** Σ out[i]·r[i] over the first n elements: the probe loss whose gradient with respect to out is r. */
    public static double dot(double[] out, double[] r, int n) {
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            s += out[i] * r[i];
        }
        return s;
    }

    /** n standard-normal doubles from a seeded generator. */
    public static double[] gaussian(long seed, int n) {
        Random rng = new Random(seed);
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = rng.nextGaussian();
        }
        return a;
    }

    public static float[] toFloat(double[] a) {
        float[] f = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            f[i] = (float) a[i];
        }
        return f;
    }

    /** The float values widened exactly to double, so a float kernel and its twin see the same inputs. */
    public static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    /**
     * Compares a float kernel's output with its double twin's, element by element: fails with the worst
     * element if |f - d| > atol + rtol·|d|.
     */
    public static void assertClose(String name, double[] expected, float[] actual, int n, double rtol, double atol) {
        int worst = -1;
        double worstExcess = 0.0;
        for (int i = 0; i < n; i++) {
            double excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
            if (excess > worstExcess || Double.isNaN(actual[i]) != Double.isNaN(expected[i])) {
                worstExcess = Double.isNaN(excess) ? Double.POSITIVE_INFINITY : excess;
                worst = i;
            }
        }
        if (worst >= 0) {
            fail(String.format("%s: element %d of %d differs: expected %.9g, got %.9g (tolerance atol %.1g + rtol %.1g)",
                    name, worst, n, expected[worst], actual[worst], atol, rtol));
        }
    }
}
