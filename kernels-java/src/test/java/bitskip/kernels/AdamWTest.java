package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class AdamWTest {
    static final float LR = 6e-4f, B1 = 0.9f, B2 = 0.999f, EPS = 1e-8f, WD = 0.1f;

    /**
     * PyTorch's _single_tensor_adamw, written out in double from its source, one element at a time:
     * param.mul_(1 - lr*wd); exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad,
     * value=1 - beta2); step_size = lr / (1 - beta1**step); denom = (exp_avg_sq.sqrt() /
     * sqrt(1 - beta2**step)).add_(eps); param.addcdiv_(exp_avg, denom, value=-step_size).
     */
    static void reference(double[] param, double[] grad, double[] m, double[] v, double lr, double beta1,
                          double beta2, double eps, double wd, int step) {
        for (int i = 0; i < param.length; i++) {
            param[i] *= 1 - lr * wd;
            m[i] += (1 - beta1) * (grad[i] - m[i]);
            v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i];
            double stepSize = lr / (1 - Math.pow(beta1, step));
            double denom = Math.sqrt(v[i]) / Math.sqrt(1 - Math.pow(beta2, step)) + eps;
            param[i] -= stepSize * m[i] / denom;
        }
    }

    @Test
    void severalStepsMatchPyTorchFormulaInDouble() {
        int n = 6, steps = 5;
        float[] param = toFloat(gaussian(1, n)), m = new float[n], v = new float[n];
        double[] paramD = toDouble(param), mD = new double[n], vD = new double[n];
        double[] twin = toDouble(param), mT = new double[n], vT = new double[n];
        for (int step = 1; step <= steps; step++) {
            float[] g = toFloat(gaussian(100 + step, n));
            g[0] = 0.0f; // a zero gradient: only the decay and the old moments move it
            AdamW.update(param, g, m, v, n, LR, B1, B2, EPS, WD, step);
            reference(paramD, toDouble(g), mD, vD, LR, B1, B2, EPS, WD, step);
            bitskip.kernels.f64.AdamW.update(twin, toDouble(g), mT, vT, n, LR, B1, B2, EPS, WD, step);
            // float: a few roundings of order-1 values per step
            assertClose("AdamW param, step " + step, paramD, param, n, 1e-6, 1e-7);
            assertClose("AdamW m, step " + step, mD, m, n, 1e-5, 1e-9);
            assertClose("AdamW v, step " + step, vD, v, n, 1e-5, 1e-12);
            // the double twin is the same formula: agrees to double rounding
            for (int i = 0; i < n; i++) {
                assertEquals(paramD[i], twin[i], 1e-14, "twin param " + i + ", step " + step);
            }
        }
    }

    @Test
    void firstStepMovesByLrTimesSignOfGradientPlusDecay() {
        // step 1: m̂ = g, v̂ = g², so the update is −lr·g/(|g| + eps) ≈ −lr·sign(g)
        float lr = 1e-3f;
        float[] param = {1.0f, -2.0f, 0.5f, 3.0f};
        float[] grad = {0.3f, -0.7f, 2.0f, -0.1f};
        float[] p0 = param.clone();
        AdamW.update(param, grad, new float[4], new float[4], 4, lr, B1, B2, EPS, WD, 1);
        for (int i = 0; i < 4; i++) {
            double expected = p0[i] * (1.0 - 1e-3 * 0.1) - 1e-3 * Math.signum(grad[i]);
            assertEquals(expected, param[i], 3e-7, "element " + i);
        }
    }

    @Test
    void constantGradientKeepsMovingByLrTimesSign() {
        // with a constant gradient the bias-corrected moments are exactly g and g² at every step
        float lr = 1e-3f;
        float[] param = {1.0f, -1.0f}, grad = {0.25f, -4.0f}, m = new float[2], v = new float[2];
        double[] expected = {1.0, -1.0};
        for (int step = 1; step <= 50; step++) {
            AdamW.update(param, grad, m, v, 2, lr, B1, B2, EPS, WD, step);
            for (int i = 0; i < 2; i++) {
                expected[i] = expected[i] * (1.0 - 1e-3 * 0.1) - 1e-3 * Math.signum(grad[i]);
                assertEquals(expected[i], param[i], 2e-6, "element " + i + ", step " + step);
            }
        }
    }

    @Test
    void badArgumentsAreNamed() {
        float[] a = new float[3];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AdamW.update(a, a.clone(), a.clone(), a.clone(), 3, LR, B1, B2, EPS, WD, 0));
        assertTrue(e.getMessage().contains("step"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> AdamW.update(a, a.clone(), new float[2], a.clone(), 3, LR, B1, B2, EPS, WD, 1));
        assertTrue(e.getMessage().contains("argument m "), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> AdamW.update(a, a.clone(), a.clone(), a.clone(), 3, LR, B1, 1.0f, EPS, WD, 1));
        assertTrue(e.getMessage().contains("beta2"), e.getMessage());
    }
}
