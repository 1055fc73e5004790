package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class RoutingLossTest {
    static final int L = 5, N = 4;
    static final double TARGET = 2.5;

    /** Router outputs in (0, 1): sigmoids of gaussians, with a few extreme ones. */
    static double[] gates(long seed) {
        double[] p = gaussian(seed, L * N);
        for (int i = 0; i < p.length; i++) {
            p[i] = 1.0 / (1.0 + Math.exp(-2.0 * p[i]));
        }
        p[3] = 0.999;
        p[N + 1] = 0.001;
        return p;
    }

    private void checkBackward(boolean batchMean) {
        double[] p = gates(batchMean ? 1 : 2);
        double[] lbar = new double[N];
        bitskip.kernels.f64.RoutingLoss.forward(lbar, p, L, N, TARGET, batchMean);
        double[] dp = new double[L * N];
        bitskip.kernels.f64.RoutingLoss.backward(dp, p, lbar, L, N, TARGET, batchMean, 0.2);
        check("RoutingLoss dpExit" + (batchMean ? " (batch mean)" : " (per token)"), p, dp,
                () -> 0.2 * bitskip.kernels.f64.RoutingLoss.forward(new double[N], p, L, N, TARGET, batchMean));
    }

    @Test
    void perTokenBackwardMatchesFiniteDifferences() {
        checkBackward(false);
    }

    @Test
    void batchMeanBackwardMatchesFiniteDifferences() {
        checkBackward(true);
    }

    @Test
    void forwardByHand() {
        // L = 3, N = 2, layer-major: token 0 gates (0.5, 0.5, 0.5), token 1 gates (1, 0.3, 0.7)
        float[] p = {0.5f, 1.0f, 0.5f, 0.3f, 0.5f, 0.7f};
        float[] lbar = new float[2];
        // token 0: P(exit) = 0.5, 0.25, 0.125 -> lbar = 0.25 + 2*0.125 = 0.5; token 1 exits at 0 -> lbar = 0
        double perToken = RoutingLoss.forward(lbar, p, 3, 2, 1.5f, false);
        assertEquals(0.5f, lbar[0], 1e-7f);
        assertEquals(0.0f, lbar[1], 0.0f);
        assertEquals(((0.5 - 1.5) * (0.5 - 1.5) + 1.5 * 1.5) / 2, perToken, 1e-7);
        double batchMean = RoutingLoss.forward(lbar, p, 3, 2, 1.5f, true);
        assertEquals((0.25 - 1.5) * (0.25 - 1.5), batchMean, 1e-7);
        // p = 1 everywhere in a layer is allowed in backward (no division by 1 - p)
        float[] d = new float[6];
        RoutingLoss.backward(d, p, lbar, 3, 2, 1.5f, false, 1.0f);
        for (float x : d) {
            assertFalse(Float.isNaN(x) || Float.isInfinite(x));
        }
        // token 1 exits at layer 0 with certainty: d lbar / d p_0 = 0 - R_0 = -(1*0.3 + 0.7*2*0.7) = -1.28,
        // d loss / d lbar = 2 (0 - 1.5) / 2 = -1.5
        assertEquals(1.92f, d[1], 1e-6f);
        assertEquals(0.0f, d[3], 0.0f); // never reached
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        for (boolean batchMean : new boolean[] {false, true}) {
            float[] p = toFloat(gates(3));
            float[] lbar = new float[N], dp = new float[L * N];
            double loss = RoutingLoss.forward(lbar, p, L, N, 6.0f, batchMean);
            RoutingLoss.backward(dp, p, lbar, L, N, 6.0f, batchMean, 0.2f);
            double[] pD = toDouble(p), lbarD = new double[N], dpD = new double[L * N];
            double lossD = bitskip.kernels.f64.RoutingLoss.forward(lbarD, pD, L, N, 6.0, batchMean);
            bitskip.kernels.f64.RoutingLoss.backward(dpD, pD, lbarD, L, N, 6.0, batchMean, 0.2);
            assertEquals(lossD, loss, 1e-6 * lossD);
            assertClose("RoutingLoss lbar", lbarD, lbar, N, 1e-6, 1e-7);
            assertClose("RoutingLoss dpExit", dpD, dp, L * N, 1e-5, 1e-7);
        }
    }

    @Test
    void backwardAccumulates() {
        float[] p = toFloat(gates(4)), lbar = new float[N];
        RoutingLoss.forward(lbar, p, L, N, 6.0f, false);
        float[] once = new float[L * N], twice = new float[L * N];
        RoutingLoss.backward(once, p, lbar, L, N, 6.0f, false, 1.0f);
        RoutingLoss.backward(twice, p, lbar, L, N, 6.0f, false, 1.0f);
        RoutingLoss.backward(twice, p, lbar, L, N, 6.0f, false, 1.0f);
        for (int i = 0; i < L * N; i++) {
            assertEquals(2 * once[i], twice[i], 1e-6f);
        }
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> RoutingLoss.forward(new float[N], new float[L * N - 1], L, N, 6.0f, false));
        assertTrue(e.getMessage().contains("pExit"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> RoutingLoss.backward(new float[L * N - 1], new float[L * N], new float[N], L, N, 6.0f, true, 1.0f));
        assertTrue(e.getMessage().contains("dpExit"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> RoutingLoss.backward(new float[L * N], new float[L * N], new float[N - 1], L, N, 6.0f, true, 1.0f));
        assertTrue(e.getMessage().contains("lbar"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> RoutingLoss.forward(new float[N], new float[L * N], 0, N, 6.0f, false));
        assertTrue(e.getMessage().contains("L"), e.getMessage());
    }
}
