package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class BitLinearTest {
    static final int N = 4, C = 6, OC = 5;

    @Test
    void fullPrecisionBackwardMatchesFiniteDifferences() {
        for (boolean relu2 : new boolean[] {true, false}) {
            double[] inp = gaussian(1, N * C), w = gaussian(2, OC * C), r = gaussian(3, N * OC);
            double[] out = new double[N * OC], preact = new double[N * OC];
            java.util.function.DoubleSupplier loss = () -> {
                bitskip.kernels.f64.BitLinear.forward(out, preact, null, null, null, inp, w, N, C, OC, 0, false, relu2);
                return dot(out, r, N * OC);
            };
            loss.getAsDouble();
            double[] dinp = new double[N * C], dw = new double[OC * C], dpre = new double[N * OC];
            bitskip.kernels.f64.BitLinear.backward(dinp, dw, dpre, r, preact, null, null, inp, w, N, C, OC, 0, false, relu2);
            check("BitLinear dinp relu2=" + relu2, inp, dinp, loss);
            check("BitLinear dweight relu2=" + relu2, w, dw, loss);
        }
    }

    @Test
    void quantizedForwardEqualsHandComposition() {
        for (int actBits : new int[] {4, 8}) {
            for (boolean relu2 : new boolean[] {true, false}) {
                float[] inp = toFloat(gaussian(10, N * C)), w = toFloat(gaussian(11, OC * C));
                float[] out = new float[N * OC], preact = new float[N * OC], xHat = new float[N * C];
                float[] scale = new float[N], wHat = new float[OC * C];
                float alpha = BitLinear.forward(out, preact, xHat, scale, wHat, inp, w, N, C, OC, actBits, true, relu2);

                float[] eXHat = new float[N * C], eScale = new float[N], eWHat = new float[OC * C];
                float[] ePre = new float[N * OC], eOut = new float[N * OC];
                float eAlpha = Quantize.ternaryForward(eWHat, null, w, OC * C);
                Quantize.activationForward(eXHat, null, eScale, inp, N, C, actBits);
                Matmul.forward(ePre, eXHat, eWHat, null, N, C, OC);
                if (relu2) {
                    Activations.relu2Forward(eOut, ePre, N * OC);
                } else {
                    eOut = ePre;
                }
                assertEquals(eAlpha, alpha);
                assertArrayEquals(eXHat, xHat);
                assertArrayEquals(eScale, scale);
                assertArrayEquals(eWHat, wHat);
                assertArrayEquals(eOut, out, "actBits " + actBits + " relu2 " + relu2);
                if (relu2) {
                    assertArrayEquals(ePre, preact);
                }
            }
        }
    }

    @Test
    void quantizersOffIsPlainMatmulAndAlphaOne() {
        float[] inp = toFloat(gaussian(12, N * C)), w = toFloat(gaussian(13, OC * C));
        float[] out = new float[N * OC], expected = new float[N * OC];
        float alpha = BitLinear.forward(out, null, null, null, null, inp, w, N, C, OC, 0, false, false);
        Matmul.forward(expected, inp, w, null, N, C, OC);
        assertEquals(1.0f, alpha);
        assertArrayEquals(expected, out);
    }

    @Test
    void quantizedBackwardIsStraightThroughComposition() {
        for (boolean relu2 : new boolean[] {true, false}) {
            float[] inp = toFloat(gaussian(20, N * C)), w = toFloat(gaussian(21, OC * C));
            float[] dout = toFloat(gaussian(22, N * OC));
            float[] out = new float[N * OC], preact = new float[N * OC], xHat = new float[N * C];
            float[] scale = new float[N], wHat = new float[OC * C];
            BitLinear.forward(out, preact, xHat, scale, wHat, inp, w, N, C, OC, 8, true, relu2);
            // non-zero starting gradients: backward must accumulate
            float[] dinp = toFloat(gaussian(23, N * C)), dw = toFloat(gaussian(24, OC * C));
            float[] eDinp = dinp.clone(), eDw = dw.clone();
            BitLinear.backward(dinp, dw, new float[N * OC], dout, preact, xHat, wHat, inp, w, N, C, OC, 8, true, relu2);

            // independently: relu2 backward, Matmul backward at (x̂, Ŵ), then the identity quantizers
            float[] dpre = dout;
            if (relu2) {
                dpre = new float[N * OC];
                Activations.relu2Backward(dpre, dout, preact, N * OC);
            }
            float[] dxHat = new float[N * C], dwHat = new float[OC * C];
            Matmul.backward(dxHat, dwHat, null, dpre, xHat, wHat, N, C, OC);
            Quantize.activationBackward(eDinp, dxHat, N * C);
            Quantize.ternaryBackward(eDw, dwHat, OC * C);
            assertArrayEquals(eDinp, dinp, "dinp relu2 " + relu2);
            assertArrayEquals(eDw, dw, "dweight relu2 " + relu2);
            // and the gradients are those of the full-precision layer evaluated at x̂ and Ŵ
            float[] fDinp = toFloat(gaussian(23, N * C)), fDw = toFloat(gaussian(24, OC * C));
            float[] fPre = new float[N * OC];
            BitLinear.forward(new float[N * OC], fPre, null, null, null, xHat, wHat, N, C, OC, 0, false, relu2);
            BitLinear.backward(fDinp, fDw, new float[N * OC], dout, fPre, null, null, xHat, wHat, N, C, OC, 0, false, relu2);
            assertArrayEquals(fDinp, dinp);
            assertArrayEquals(fDw, dw);
        }
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[] inp = toFloat(gaussian(30, N * C)), w = toFloat(gaussian(31, OC * C)), dout = toFloat(gaussian(32, N * OC));
        float[] out = new float[N * OC], pre = new float[N * OC], dinp = new float[N * C], dw = new float[OC * C];
        double[] outD = new double[N * OC], preD = new double[N * OC], dinpD = new double[N * C], dwD = new double[OC * C];
        BitLinear.forward(out, pre, null, null, null, inp, w, N, C, OC, 0, false, true);
        BitLinear.backward(dinp, dw, new float[N * OC], dout, pre, null, null, inp, w, N, C, OC, 0, false, true);
        double[] inpD = toDouble(inp), wD = toDouble(w);
        bitskip.kernels.f64.BitLinear.forward(outD, preD, null, null, null, inpD, wD, N, C, OC, 0, false, true);
        bitskip.kernels.f64.BitLinear.backward(dinpD, dwD, new double[N * OC], toDouble(dout), preD, null, null, inpD, wD,
                N, C, OC, 0, false, true);
        assertClose("BitLinear forward", outD, out, N * OC, 1e-5, 1e-6);
        assertClose("BitLinear dinp", dinpD, dinp, N * C, 1e-4, 1e-5);
        assertClose("BitLinear dweight", dwD, dw, OC * C, 1e-4, 1e-5);
        // quantized: same ternary weights and activation levels for these inputs, so the outputs agree too
        double[] xHatD = new double[N * C], wHatD = new double[OC * C], sD = new double[N];
        float[] xHat = new float[N * C], wHat = new float[OC * C], s = new float[N];
        BitLinear.forward(out, pre, xHat, s, wHat, inp, w, N, C, OC, 8, true, true);
        bitskip.kernels.f64.BitLinear.forward(outD, preD, xHatD, sD, wHatD, inpD, wD, N, C, OC, 8, true, true);
        assertClose("BitLinear quantized forward", outD, out, N * OC, 1e-5, 1e-6);
    }

    @Test
    void inconsistentArgumentsNameTheArgument() {
        float[] inp = new float[N * C], w = new float[OC * C], out = new float[N * OC], pre = new float[N * OC];
        float[] xHat = new float[N * C], s = new float[N], wHat = new float[OC * C];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BitLinear.forward(out, pre, xHat, s, wHat, inp, w, N, C, OC, 1, true, true));
        assertTrue(e.getMessage().contains("actBits"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BitLinear.forward(out, pre, xHat, s, new float[OC * C - 1], inp, w, N, C, OC, 8, true, true));
        assertTrue(e.getMessage().contains("wHat"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BitLinear.forward(out, null, xHat, s, wHat, inp, w, N, C, OC, 8, true, true));
        assertTrue(e.getMessage().contains("preact"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BitLinear.forward(out, pre, null, s, wHat, inp, w, N, C, OC, 8, true, true));
        assertTrue(e.getMessage().contains("xHat"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BitLinear.forward(out, pre, xHat, s, wHat, inp, new float[OC * C - 1], N, C, OC, 8, true, true));
        assertTrue(e.getMessage().contains("weight"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> BitLinear.backward(new float[N * C], null, null, new float[N * OC], pre, xHat, wHat, inp, w,
                        N, C, OC, 8, true, true));
        assertTrue(e.getMessage().contains("dpreact"), e.getMessage());
    }
}
