package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class HBitLinearTest {
    // C = 5 is not a power of two: the padding columns are exercised.
    static final int N = 3, C = 5, P = 8, OC = 4;
    static final float EPS = 1e-5f;

    /** Every buffer of one H-BitLinear call, in one precision. */
    static final class F {
        float[] out = new float[N * OC], preact = new float[N * OC], zHat = new float[N * P], scale = new float[N];
        float[] wHat = new float[OC * P], z = new float[N * P], lnOut = new float[N * C];
        float[] mean = new float[N], rstd = new float[N];
        float[] dpreact = new float[N * OC], dz = new float[N * P], dlnOut = new float[N * C];
    }

    static final class D {
        double[] out = new double[N * OC], preact = new double[N * OC], zHat = new double[N * P], scale = new double[N];
        double[] wHat = new double[OC * P], z = new double[N * P], lnOut = new double[N * C];
        double[] mean = new double[N], rstd = new double[N];
        double[] dpreact = new double[N * OC], dz = new double[N * P], dlnOut = new double[N * C];
    }

    @Test
    void fullPrecisionBackwardMatchesFiniteDifferences() {
        for (boolean relu2 : new boolean[] {true, false}) {
            double[] inp = gaussian(1, N * C), lw = gaussian(2, C), lb = gaussian(3, C), w = gaussian(4, OC * P);
            double[] r = gaussian(5, N * OC);
            D b = new D();
            java.util.function.DoubleSupplier loss = () -> {
                bitskip.kernels.f64.HBitLinear.forward(b.out, b.preact, null, null, null, b.z, b.lnOut, b.mean, b.rstd,
                        inp, lw, lb, w, N, C, P, OC, 1e-5, 0, false, relu2);
                return dot(b.out, r, N * OC);
            };
            loss.getAsDouble();
            double[] dinp = new double[N * C], dlw = new double[C], dlb = new double[C], dw = new double[OC * P];
            bitskip.kernels.f64.HBitLinear.backward(dinp, dlw, dlb, dw, b.dpreact, b.dz, b.dlnOut, r, b.preact, null,
                    null, b.z, b.mean, b.rstd, inp, lw, w, N, C, P, OC, 0, false, relu2);
            check("HBitLinear dinp relu2=" + relu2, inp, dinp, loss);
            check("HBitLinear dlnWeight relu2=" + relu2, lw, dlw, loss);
            check("HBitLinear dlnBias relu2=" + relu2, lb, dlb, loss);
            check("HBitLinear dweight relu2=" + relu2, w, dw, loss);
        }
    }

    @Test
    void quantizedForwardEqualsHandComposition() {
        for (int actBits : new int[] {4, 8}) {
            float[] inp = toFloat(gaussian(10, N * C)), lw = toFloat(gaussian(11, C)), lb = toFloat(gaussian(12, C));
            float[] w = toFloat(gaussian(13, OC * P));
            F f = new F();
            float alpha = HBitLinear.forward(f.out, f.preact, f.zHat, f.scale, f.wHat, f.z, f.lnOut, f.mean, f.rstd,
                    inp, lw, lb, w, N, C, P, OC, EPS, actBits, true, true);

            float[] u = new float[N * C], mean = new float[N], rstd = new float[N], padded = new float[N * P];
            float[] z = new float[N * P], zHat = new float[N * P], s = new float[N], wHat = new float[OC * P];
            float[] pre = new float[N * OC], out = new float[N * OC];
            LayerNorm.forward(u, mean, rstd, inp, lw, lb, N, C, EPS);
            Hadamard.padForward(padded, u, N, C, P);
            Hadamard.forward(z, padded, N, P);
            Quantize.activationForward(zHat, null, s, z, N, P, actBits);
            float eAlpha = Quantize.ternaryForward(wHat, null, w, OC * P);
            Matmul.forward(pre, zHat, wHat, null, N, P, OC);
            Activations.relu2Forward(out, pre, N * OC);

            assertEquals(eAlpha, alpha);
            assertArrayEquals(z, f.z);
            assertArrayEquals(zHat, f.zHat);
            assertArrayEquals(wHat, f.wHat);
            assertArrayEquals(mean, f.mean);
            assertArrayEquals(rstd, f.rstd);
            assertArrayEquals(out, f.out, "actBits " + actBits);
        }
    }

    @Test
    void quantizedBackwardIsStraightThroughComposition() {
        for (boolean relu2 : new boolean[] {true, false}) {
            float[] inp = toFloat(gaussian(20, N * C)), lw = toFloat(gaussian(21, C)), lb = toFloat(gaussian(22, C));
            float[] w = toFloat(gaussian(23, OC * P)), dout = toFloat(gaussian(24, N * OC));
            F f = new F();
            HBitLinear.forward(f.out, f.preact, f.zHat, f.scale, f.wHat, f.z, f.lnOut, f.mean, f.rstd,
                    inp, lw, lb, w, N, C, P, OC, EPS, 8, true, relu2);
            // non-zero starting gradients: backward must accumulate
            float[] dinp = toFloat(gaussian(25, N * C)), dlw = toFloat(gaussian(26, C)), dlb = toFloat(gaussian(27, C));
            float[] dw = toFloat(gaussian(28, OC * P));
            float[] eDinp = dinp.clone(), eDlw = dlw.clone(), eDlb = dlb.clone(), eDw = dw.clone();
            HBitLinear.backward(dinp, dlw, dlb, dw, f.dpreact, f.dz, f.dlnOut, dout, f.preact, f.zHat, f.wHat, f.z,
                    f.mean, f.rstd, inp, lw, w, N, C, P, OC, 8, true, relu2);

            // independently, piece by piece, with the quantizers as the identity
            float[] dpre = dout;
            if (relu2) {
                dpre = new float[N * OC];
                Activations.relu2Backward(dpre, dout, f.preact, N * OC);
            }
            float[] dzHat = new float[N * P], dwHat = new float[OC * P];
            Matmul.backward(dzHat, dwHat, null, dpre, f.zHat, f.wHat, N, P, OC);
            float[] dz = new float[N * P];
            Quantize.activationBackward(dz, dzHat, N * P);
            Quantize.ternaryBackward(eDw, dwHat, OC * P);
            float[] dpadded = new float[N * P], scratch = new float[N * P];
            Hadamard.backward(dpadded, dz, scratch, N, P);
            float[] du = new float[N * C];
            Hadamard.padBackward(du, dpadded, N, C, P);
            LayerNorm.backward(eDinp, eDlw, eDlb, du, inp, lw, f.mean, f.rstd, N, C);

            assertArrayEquals(eDinp, dinp, "dinp relu2 " + relu2);
            assertArrayEquals(eDlw, dlw, "dlnWeight relu2 " + relu2);
            assertArrayEquals(eDlb, dlb, "dlnBias relu2 " + relu2);
            assertArrayEquals(eDw, dw, "dweight relu2 " + relu2);
        }
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[] inp = toFloat(gaussian(30, N * C)), lw = toFloat(gaussian(31, C)), lb = toFloat(gaussian(32, C));
        float[] w = toFloat(gaussian(33, OC * P)), dout = toFloat(gaussian(34, N * OC));
        F f = new F();
        D d = new D();
        double[] inpD = toDouble(inp), lwD = toDouble(lw), lbD = toDouble(lb), wD = toDouble(w);
        HBitLinear.forward(f.out, f.preact, null, null, null, f.z, f.lnOut, f.mean, f.rstd,
                inp, lw, lb, w, N, C, P, OC, EPS, 0, false, true);
        bitskip.kernels.f64.HBitLinear.forward(d.out, d.preact, null, null, null, d.z, d.lnOut, d.mean, d.rstd,
                inpD, lwD, lbD, wD, N, C, P, OC, EPS, 0, false, true);
        assertClose("HBitLinear forward", d.out, f.out, N * OC, 1e-4, 1e-5);
        float[] dinp = new float[N * C], dlw = new float[C], dlb = new float[C], dw = new float[OC * P];
        double[] dinpD = new double[N * C], dlwD = new double[C], dlbD = new double[C], dwD = new double[OC * P];
        HBitLinear.backward(dinp, dlw, dlb, dw, f.dpreact, f.dz, f.dlnOut, dout, f.preact, null, null, f.z,
                f.mean, f.rstd, inp, lw, w, N, C, P, OC, 0, false, true);
        bitskip.kernels.f64.HBitLinear.backward(dinpD, dlwD, dlbD, dwD, d.dpreact, d.dz, d.dlnOut, toDouble(dout),
                d.preact, null, null, d.z, d.mean, d.rstd, inpD, lwD, wD, N, C, P, OC, 0, false, true);
        assertClose("HBitLinear dinp", dinpD, dinp, N * C, 1e-4, 1e-5);
        assertClose("HBitLinear dlnWeight", dlwD, dlw, C, 1e-4, 1e-5);
        assertClose("HBitLinear dlnBias", dlbD, dlb, C, 1e-4, 1e-5);
        assertClose("HBitLinear dweight", dwD, dw, OC * P, 1e-4, 1e-5);
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        F f = new F();
        float[] inp = new float[N * C], lw = new float[C], lb = new float[C], w = new float[OC * P];
        // P not a power of two
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HBitLinear.forward(f.out, f.preact, f.zHat, f.scale, f.wHat, new float[N * 6], f.lnOut, f.mean,
                        f.rstd, inp, lw, lb, new float[OC * 6], N, C, 6, OC, EPS, 8, true, true));
        assertTrue(e.getMessage().contains("argument P") && e.getMessage().contains("power of two"), e.getMessage());
        // P < C
        e = assertThrows(IllegalArgumentException.class,
                () -> HBitLinear.forward(f.out, f.preact, f.zHat, f.scale, f.wHat, f.z, f.lnOut, f.mean, f.rstd,
                        inp, lw, lb, w, N, C, 4, OC, EPS, 8, true, true));
        assertTrue(e.getMessage().contains("argument P") && e.getMessage().contains("C = 5"), e.getMessage());
        // W given in the unrotated shape (OC, C)
        e = assertThrows(IllegalArgumentException.class,
                () -> HBitLinear.forward(f.out, f.preact, f.zHat, f.scale, f.wHat, f.z, f.lnOut, f.mean, f.rstd,
                        inp, lw, lb, new float[OC * C], N, C, P, OC, EPS, 8, true, true));
        assertTrue(e.getMessage().contains("weight"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> HBitLinear.backward(new float[N * C], new float[C], new float[C], null, f.dpreact, new float[N * P - 1],
                        f.dlnOut, new float[N * OC], f.preact, f.zHat, f.wHat, f.z, f.mean, f.rstd, inp, lw, w,
                        N, C, P, OC, 8, true, true));
        assertTrue(e.getMessage().contains("dz"), e.getMessage());
    }
}
