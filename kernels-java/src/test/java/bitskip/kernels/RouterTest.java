package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class RouterTest {
    static final int N = 3, C = 8, H = 2;
    static final double EPS = 1e-5;

    static double[] around(long seed, int n, double center, double spread) {
        double[] a = gaussian(seed, n);
        for (int i = 0; i < n; i++) {
            a[i] = center + spread * a[i];
        }
        return a;
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        double[] h = gaussian(1, N * C), lnW = around(2, C, 1.0, 0.3), lnB = around(3, C, 0.0, 0.3);
        double[] w1 = around(4, H * C, 0.0, 0.5), b1 = around(5, H, 0.0, 0.5);
        double[] w2 = around(6, H, 0.0, 1.0), b2 = {0.3}, r = gaussian(7, N);
        double[] p = new double[N], ln = new double[N * C], mean = new double[N], rstd = new double[N];
        double[] hidden = new double[N * H];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Router.forward(p, ln, mean, rstd, hidden, h, lnW, lnB, w1, b1, w2, b2, N, C, H, EPS);
            return dot(p, r, N);
        };
        loss.getAsDouble();
        int active = 0;
        for (double x : hidden) {
            active += x > 0.0 ? 1 : 0;
        }
        assertTrue(active > 0 && active < N * H, "the probe should exercise both sides of the ReLU");
        double[] dh = new double[N * C], dlnW = new double[C], dlnB = new double[C];
        double[] dw1 = new double[H * C], db1 = new double[H], dw2 = new double[H], db2 = new double[1];
        bitskip.kernels.f64.Router.backward(dh, dlnW, dlnB, dw1, db1, dw2, db2, new double[N], new double[N * H],
                new double[N * H], new double[N * C], r, p, ln, mean, rstd, hidden, h, lnW, w1, w2, N, C, H);
        check("Router dh", h, dh, loss);
        check("Router dlnWeight", lnW, dlnW, loss);
        check("Router dlnBias", lnB, dlnB, loss);
        check("Router dw1", w1, dw1, loss);
        check("Router db1", b1, db1, loss);
        check("Router dw2", w2, dw2, loss);
        check("Router db2", b2, db2, loss);
    }

    @Test
    void forwardIsTheGateOfEquation6() {
        // written out for one token, independently of the kernels it is built from
        double[] h = gaussian(8, C), lnW = around(9, C, 1.0, 0.3), lnB = around(10, C, 0.0, 0.3);
        double[] w1 = around(11, H * C, 0.0, 0.5), b1 = around(12, H, 0.0, 0.5), w2 = around(13, H, 0.0, 1.0);
        double[] b2 = {-0.2};
        double m = 0.0, var = 0.0;
        for (double x : h) {
            m += x / C;
        }
        for (double x : h) {
            var += (x - m) * (x - m) / C;
        }
        double logit = b2[0];
        for (int j = 0; j < H; j++) {
            double a = b1[j];
            for (int c = 0; c < C; c++) {
                a += w1[j * C + c] * ((h[c] - m) / Math.sqrt(var + EPS) * lnW[c] + lnB[c]);
            }
            logit += w2[j] * Math.max(a, 0.0);
        }
        double expected = 1.0 / (1.0 + Math.exp(-logit));
        float[] p = new float[1];
        Router.forward(p, new float[C], new float[1], new float[1], new float[H], toFloat(h), toFloat(lnW),
                toFloat(lnB), toFloat(w1), toFloat(b1), toFloat(w2), toFloat(b2), 1, C, H, (float) EPS);
        assertEquals(expected, p[0], 1e-6);
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[] h = toFloat(gaussian(14, N * C)), lnW = toFloat(around(15, C, 1.0, 0.3));
        float[] lnB = toFloat(around(16, C, 0.0, 0.3)), w1 = toFloat(around(17, H * C, 0.0, 0.5));
        float[] b1 = toFloat(around(18, H, 0.0, 0.5)), w2 = toFloat(around(19, H, 0.0, 1.0)), b2 = {0.1f};
        float[] dp = toFloat(gaussian(20, N));
        float[] p = new float[N], ln = new float[N * C], mean = new float[N], rstd = new float[N];
        float[] hidden = new float[N * H];
        Router.forward(p, ln, mean, rstd, hidden, h, lnW, lnB, w1, b1, w2, b2, N, C, H, 1e-5f);
        float[] dh = new float[N * C], dlnW = new float[C], dlnB = new float[C], dw1 = new float[H * C];
        float[] db1 = new float[H], dw2 = new float[H], db2 = new float[1];
        Router.backward(dh, dlnW, dlnB, dw1, db1, dw2, db2, new float[N], new float[N * H], new float[N * H],
                new float[N * C], dp, p, ln, mean, rstd, hidden, h, lnW, w1, w2, N, C, H);

        double[] hD = toDouble(h), lnWD = toDouble(lnW), w1D = toDouble(w1), w2D = toDouble(w2);
        double[] pD = new double[N], lnD = new double[N * C], meanD = new double[N], rstdD = new double[N];
        double[] hiddenD = new double[N * H];
        bitskip.kernels.f64.Router.forward(pD, lnD, meanD, rstdD, hiddenD, hD, lnWD, toDouble(lnB), w1D,
                toDouble(b1), w2D, toDouble(b2), N, C, H, (float) 1e-5);
        double[] dhD = new double[N * C], dlnWD = new double[C], dlnBD = new double[C], dw1D = new double[H * C];
        double[] db1D = new double[H], dw2D = new double[H], db2D = new double[1];
        bitskip.kernels.f64.Router.backward(dhD, dlnWD, dlnBD, dw1D, db1D, dw2D, db2D, new double[N],
                new double[N * H], new double[N * H], new double[N * C], toDouble(dp), pD, lnD, meanD, rstdD,
                hiddenD, hD, lnWD, w1D, w2D, N, C, H);
        assertClose("Router p", pD, p, N, 1e-6, 1e-7);
        assertClose("Router hidden", hiddenD, hidden, N * H, 1e-5, 1e-6);
        assertClose("Router dh", dhD, dh, N * C, 1e-4, 1e-6);
        assertClose("Router dlnWeight", dlnWD, dlnW, C, 1e-4, 1e-6);
        assertClose("Router dlnBias", dlnBD, dlnB, C, 1e-4, 1e-6);
        assertClose("Router dw1", dw1D, dw1, H * C, 1e-4, 1e-6);
        assertClose("Router db1", db1D, db1, H, 1e-4, 1e-6);
        assertClose("Router dw2", dw2D, dw2, H, 1e-5, 1e-6);
        assertClose("Router db2", db2D, db2, 1, 1e-5, 1e-6);
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        float[] p = new float[N], ln = new float[N * C], mean = new float[N], rstd = new float[N];
        float[] hidden = new float[N * H], h = new float[N * C], lnW = new float[C], lnB = new float[C];
        float[] w1 = new float[H * C], b1 = new float[H], w2 = new float[H], b2 = new float[1];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Router.forward(p, ln, mean, rstd, hidden, h, lnW, lnB, new float[H * C - 1], b1, w2, b2, N, C, H, 1e-5f));
        assertTrue(e.getMessage().contains("w1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Router.forward(p, ln, mean, rstd, hidden, h, lnW, lnB, w1, b1, w2, new float[0], N, C, H, 1e-5f));
        assertTrue(e.getMessage().contains("b2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Router.forward(p, ln, mean, rstd, hidden, new float[N * C - 1], lnW, lnB, w1, b1, w2, b2, N, C, H, 1e-5f));
        assertTrue(e.getMessage().contains("argument h "), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Router.backward(new float[N * C], new float[C], new float[C], new float[H * C], new float[H],
                        new float[H], new float[1], new float[N], new float[N * H - 1], new float[N * H],
                        new float[N * C], new float[N], p, ln, mean, rstd, hidden, h, lnW, w1, w2, N, C, H));
        assertTrue(e.getMessage().contains("dhidden"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Router.forward(p, ln, mean, rstd, hidden, h, lnW, lnB, w1, b1, w2, b2, N, C, 0, 1e-5f));
        assertTrue(e.getMessage().contains("H"), e.getMessage());
    }
}
