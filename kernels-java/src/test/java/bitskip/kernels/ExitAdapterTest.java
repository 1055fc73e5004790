package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class ExitAdapterTest {
    static final int N = 3, C = 8;
    static final double EPS = 1e-5;

    @Test
    void backwardMatchesFiniteDifferences() {
        // a non-zero W (the trained case), so the LayerNorm's gradients are exercised too
        double[] h = gaussian(1, N * C), lnW = RouterTest.around(2, C, 1.0, 0.3), lnB = RouterTest.around(3, C, 0.0, 0.3);
        double[] w = RouterTest.around(4, C * C, 0.0, 0.5), r = gaussian(5, N * C);
        double[] out = new double[N * C], ln = new double[N * C], mean = new double[N], rstd = new double[N];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.ExitAdapter.forward(out, ln, mean, rstd, h, lnW, lnB, w, N, C, EPS);
            return dot(out, r, N * C);
        };
        loss.getAsDouble();
        double[] dh = new double[N * C], dlnW = new double[C], dlnB = new double[C], dw = new double[C * C];
        bitskip.kernels.f64.ExitAdapter.backward(dh, dlnW, dlnB, dw, new double[N * C], r, h, ln, mean, rstd, lnW, w,
                N, C);
        check("ExitAdapter dh", h, dh, loss);
        check("ExitAdapter dlnWeight", lnW, dlnW, loss);
        check("ExitAdapter dlnBias", lnB, dlnB, loss);
        check("ExitAdapter dw", w, dw, loss);
    }

    @Test
    void zeroWeightIsTheIdentityAndStillLearns() {
        float[] h = toFloat(gaussian(6, N * C)), lnW = new float[C], lnB = new float[C], w = new float[C * C];
        java.util.Arrays.fill(lnW, 1.0f);
        float[] out = new float[N * C], ln = new float[N * C], mean = new float[N], rstd = new float[N];
        ExitAdapter.forward(out, ln, mean, rstd, h, lnW, lnB, w, N, C, 1e-5f);
        assertArrayEquals(h, out, "W = 0: the adapter passes h through bit for bit");
        float[] dout = toFloat(gaussian(7, N * C)), dh = new float[N * C], dlnW = new float[C], dlnB = new float[C];
        float[] dw = new float[C * C];
        ExitAdapter.backward(dh, dlnW, dlnB, dw, new float[N * C], dout, h, ln, mean, rstd, lnW, w, N, C);
        assertArrayEquals(dout, dh, "W = 0: the gradient passes through the residual only");
        double s = 0;
        for (float g : dw) {
            s += Math.abs(g);
        }
        assertTrue(s > 0, "W gets a gradient at zero");
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[] h = toFloat(gaussian(8, N * C)), lnW = toFloat(RouterTest.around(9, C, 1.0, 0.3));
        float[] lnB = toFloat(RouterTest.around(10, C, 0.0, 0.3)), w = toFloat(RouterTest.around(11, C * C, 0.0, 0.5));
        float[] dout = toFloat(gaussian(12, N * C));
        float[] out = new float[N * C], ln = new float[N * C], mean = new float[N], rstd = new float[N];
        ExitAdapter.forward(out, ln, mean, rstd, h, lnW, lnB, w, N, C, 1e-5f);
        float[] dh = new float[N * C], dlnW = new float[C], dlnB = new float[C], dw = new float[C * C];
        ExitAdapter.backward(dh, dlnW, dlnB, dw, new float[N * C], dout, h, ln, mean, rstd, lnW, w, N, C);
        double[] hD = toDouble(h), lnWD = toDouble(lnW), wD = toDouble(w);
        double[] outD = new double[N * C], lnD = new double[N * C], meanD = new double[N], rstdD = new double[N];
        bitskip.kernels.f64.ExitAdapter.forward(outD, lnD, meanD, rstdD, hD, lnWD, toDouble(lnB), wD, N, C, (float) 1e-5);
        double[] dhD = new double[N * C], dlnWD = new double[C], dlnBD = new double[C], dwD = new double[C * C];
        bitskip.kernels.f64.ExitAdapter.backward(dhD, dlnWD, dlnBD, dwD, new double[N * C], toDouble(dout), hD, lnD,
                meanD, rstdD, lnWD, wD, N, C);
        assertClose("ExitAdapter out", outD, out, N * C, 1e-5, 1e-6);
        assertClose("ExitAdapter dh", dhD, dh, N * C, 1e-4, 1e-6);
        assertClose("ExitAdapter dlnWeight", dlnWD, dlnW, C, 1e-4, 1e-6);
        assertClose("ExitAdapter dlnBias", dlnBD, dlnB, C, 1e-4, 1e-6);
        assertClose("ExitAdapter dw", dwD, dw, C * C, 1e-4, 1e-6);
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        float[] h = new float[N * C], out = new float[N * C], ln = new float[N * C], mean = new float[N];
        float[] rstd = new float[N], lnW = new float[C], lnB = new float[C];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ExitAdapter.forward(out, ln, mean, rstd, h, lnW, lnB, new float[C * C - 1], N, C, 1e-5f));
        assertTrue(e.getMessage().contains("argument w "), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> ExitAdapter.forward(h, ln, mean, rstd, h, lnW, lnB, new float[C * C], N, C, 1e-5f));
        assertTrue(e.getMessage().contains("argument out"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> ExitAdapter.backward(new float[N * C], lnW, lnB, new float[C * C], new float[N * C - 1],
                        new float[N * C], h, ln, mean, rstd, lnW, new float[C * C], N, C));
        assertTrue(e.getMessage().contains("dln"), e.getMessage());
    }
}
