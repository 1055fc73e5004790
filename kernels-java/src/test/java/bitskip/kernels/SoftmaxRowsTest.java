package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** Attention.softmaxRows and softmaxBackwardRows: the causal softmax of (T, T) blocks and its backward. */
class SoftmaxRowsTest {
    static final int T = 4, ROWS = 2 * T, OFF = 3;

    @Test
    void backwardMatchesFiniteDifferences() {
        double[] x = gaussian(1, OFF + ROWS * T), r = gaussian(2, OFF + ROWS * T);
        double scale = 0.7;
        double[] p = new double[x.length];
        java.util.function.DoubleSupplier loss = () -> {
            // the loss of scores x: Σ r · softmax(scale · x) (scale as the attention scores carry it)
            for (int i = 0; i < x.length; i++) {
                p[i] = scale * x[i];
            }
            bitskip.kernels.f64.Attention.softmaxRows(p, OFF, ROWS, T);
            return dot(java.util.Arrays.copyOfRange(p, OFF, p.length), java.util.Arrays.copyOfRange(r, OFF, r.length), ROWS * T);
        };
        loss.getAsDouble();
        double[] d = r.clone();
        bitskip.kernels.f64.Attention.softmaxBackwardRows(d, OFF, p, OFF, ROWS, T, scale);
        double[] analytic = new double[x.length];
        System.arraycopy(d, OFF, analytic, OFF, ROWS * T);
        check("softmaxRows", x, analytic, loss);
    }

    @Test
    void rowsAreCausalAndSumToOne() {
        float[] x = toFloat(gaussian(3, ROWS * T));
        Attention.softmaxRows(x, 0, ROWS, T);
        for (int r = 0; r < ROWS; r++) {
            double sum = 0;
            for (int s = 0; s < T; s++) {
                float v = x[r * T + s];
                if (s > r % T) {
                    assertEquals(0.0f, v, "row " + r + " key " + s + " is in the future");
                }
                sum += v;
            }
            assertEquals(1.0, sum, 1e-6);
        }
    }
}
