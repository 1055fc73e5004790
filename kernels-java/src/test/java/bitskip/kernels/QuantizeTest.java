package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class QuantizeTest {

    // ---------------------------------------------------------------- ternary weights

    @Test
    void ternaryWeightsExactlyAtHalfAlphaBecomeZero() {
        // |w| sums to 16 over 8 elements: alpha = 2 exactly, threshold 0.5*alpha = 1 exactly.
        float[] w = {4, -4, 1, -1, 3, -3, 0, 0};
        float[] wHat = new float[8];
        byte[] codes = new byte[8];
        float alpha = Quantize.ternaryForward(wHat, codes, w, 8);
        assertEquals(2.0f, alpha);
        assertArrayEquals(new byte[] {1, -1, 0, 0, 1, -1, 0, 0}, codes);
        assertArrayEquals(new float[] {2, -2, 0, 0, 2, -2, 0, 0}, wHat);
    }

    @Test
    void ternaryWeightsJustBeyondTheThresholdAreKept() {
        // e = 2^-20 keeps every value exact in float; the |w| sum is exactly 18 over 9 elements, so
        // alpha = 2 and the threshold is 1: 1+e is kept, 1-e is dropped, in both signs.
        float e = 0x1p-20f;
        float[] w9 = {4, -4, 1 + e, -(1 - e), 3 - e, -(3 + e), 1 - e, -(1 + e), 0};
        byte[] codes = new byte[9];
        float alpha = Quantize.ternaryForward(null, codes, w9, 9);
        assertEquals(2.0f, alpha);
        assertArrayEquals(new byte[] {1, -1, 1, 0, 1, -1, 0, -1, 0}, codes);
    }

    @Test
    void allZeroWeightsGiveMinimumAlphaAndZeroCodes() {
        float[] w = new float[12];
        float[] wHat = new float[12];
        java.util.Arrays.fill(wHat, Float.NaN);
        byte[] codes = new byte[12];
        java.util.Arrays.fill(codes, (byte) 7);
        float alpha = Quantize.ternaryForward(wHat, codes, w, 12);
        assertEquals(1e-6f, alpha);
        for (int i = 0; i < 12; i++) {
            assertEquals(0, codes[i]);
            assertEquals(0.0f, wHat[i]);
        }
    }

    @Test
    void ternaryCodesOnlyAndWHatOnlyAgree() {
        float[] w = toFloat(gaussian(11, 50));
        float[] wHat = new float[50];
        byte[] codes = new byte[50];
        float a1 = Quantize.ternaryForward(wHat, null, w, 50);
        float a2 = Quantize.ternaryForward(null, codes, w, 50);
        assertEquals(a1, a2);
        for (int i = 0; i < 50; i++) {
            assertEquals(a1 * codes[i], wHat[i]);
        }
    }

    @Test
    void ternaryFloatMatchesDoubleTwin() {
        int n = 200;
        float[] w = toFloat(gaussian(12, n));
        float[] wHat = new float[n];
        double[] wHatD = new double[n];
        float alpha = Quantize.ternaryForward(wHat, null, w, n);
        double alphaD = bitskip.kernels.f64.Quantize.ternaryForward(wHatD, null, toDouble(w), n);
        assertEquals(alphaD, alpha, 1e-6 * alphaD);
        assertClose("ternary wHat", wHatD, wHat, n, 1e-6, 0.0);
    }

    @Test
    void ternaryBackwardIsStraightThrough() {
        int n = 17;
        float[] dw = toFloat(gaussian(13, n)), dwHat = toFloat(gaussian(14, n));
        float[] expected = new float[n];
        for (int i = 0; i < n; i++) {
            expected[i] = dw[i] + dwHat[i];
        }
        Quantize.ternaryBackward(dw, dwHat, n);
        assertArrayEquals(expected, dw);
    }

    // ---------------------------------------------------------------- activations

    @Test
    void allZeroTokenGivesZerosNotNaN() {
        int N = 2, C = 4;
        float[] inp = {0, 0, 0, 0, 1, -2, 0.5f, 0};
        float[] out = new float[N * C], scale = new float[N];
        byte[] codes = new byte[N * C];
        java.util.Arrays.fill(out, Float.NaN);
        Quantize.activationForward(out, codes, scale, inp, N, C, 8);
        assertEquals(1e-6f, scale[0]);
        assertEquals(2.0f, scale[1]);
        for (int c = 0; c < C; c++) {
            assertEquals(0, codes[c]);
            assertEquals(0.0f, out[c]);
        }
        assertEquals(-127, codes[5]);
        assertEquals(-2.0f, out[5]);
    }

    @Test
    void absmaxElementMapsExactlyToQAndCodesStayInRange() {
        for (int bits : new int[] {4, 8}) {
            int Q = (1 << (bits - 1)) - 1;
            int N = 64, C = 33;
            float[] inp = toFloat(gaussian(20 + bits, N * C));
            float[] out = new float[N * C], scale = new float[N];
            byte[] codes = new byte[N * C];
            Quantize.activationForward(out, codes, scale, inp, N, C, bits);
            for (int n = 0; n < N; n++) {
                int argmax = 0;
                for (int c = 1; c < C; c++) {
                    if (Math.abs(inp[n * C + c]) > Math.abs(inp[n * C + argmax])) {
                        argmax = c;
                    }
                }
                float x = inp[n * C + argmax];
                assertEquals(Math.abs(x), scale[n]);
                assertEquals(x > 0 ? Q : -Q, codes[n * C + argmax], "bits " + bits + " token " + n);
                for (int c = 0; c < C; c++) {
                    int q = codes[n * C + c];
                    assertTrue(q >= -Q && q <= Q, "code " + q + " outside [-" + Q + ", " + Q + "]");
                    // delta 0: equal values, but -0.0 (rint of a small negative) equals 0.0, as in torch
                    assertEquals((scale[n] * q) / Q, out[n * C + c], 0.0f);
                    // x̂ is within half a level of x
                    assertTrue(Math.abs(out[n * C + c] - inp[n * C + c]) <= 0.5f * scale[n] / Q * 1.0001f);
                }
            }
        }
    }

    @Test
    void limitsAreExactForFourAndEightBits() {
        float[] inp = {-3, 1.5f, 0.25f, 3};
        float[] out = new float[4], scale = new float[1];
        byte[] codes = new byte[4];
        Quantize.activationForward(out, codes, scale, inp, 1, 4, 4);
        assertEquals(-7, codes[0]);
        assertEquals(7, codes[3]);
        assertEquals(-3.0f, out[0]);
        assertEquals(3.0f, out[3]);
        Quantize.activationForward(out, codes, scale, inp, 1, 4, 8);
        assertEquals(-127, codes[0]);
        assertEquals(127, codes[3]);
        assertEquals(-3.0f, out[0]);
        assertEquals(3.0f, out[3]);
    }

    @Test
    void roundsHalfToEven() {
        // s = Q makes Q*x/s = x exactly for these halves; rint rounds them to the even neighbour.
        float[] inp4 = {7, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 3.5f, -1.5f};
        byte[] codes = new byte[8];
        float[] scale = new float[1];
        Quantize.activationForward(null, codes, scale, inp4, 1, 8, 4);
        assertArrayEquals(new byte[] {7, 0, 2, 2, 0, -2, 4, -2}, codes);

        float[] inp8 = {-127, 0.5f, 1.5f, 2.5f, -3.5f, 62.5f, 126.5f};
        codes = new byte[7];
        float[] out = new float[7];
        Quantize.activationForward(out, codes, scale, inp8, 1, 7, 8);
        assertArrayEquals(new byte[] {-127, 0, 2, 2, -4, 62, 126}, codes);
        assertEquals(62.0f, out[5]);
    }

    @Test
    void rejectsBitsOutsideTwoToEight() {
        float[] inp = new float[4], out = new float[4], scale = new float[1];
        for (int bits : new int[] {1, 9}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Quantize.activationForward(out, null, scale, inp, 1, 4, bits));
            assertTrue(e.getMessage().contains("bits"), e.getMessage());
        }
        // the bounds themselves are accepted
        Quantize.activationForward(out, null, scale, inp, 1, 4, 2);
        Quantize.activationForward(out, null, scale, inp, 1, 4, 8);
    }

    @Test
    void activationFloatMatchesDoubleTwin() {
        int N = 8, C = 16;
        float[] inp = toFloat(gaussian(30, N * C));
        float[] out = new float[N * C], scale = new float[N];
        double[] outD = new double[N * C], scaleD = new double[N];
        Quantize.activationForward(out, null, scale, inp, N, C, 8);
        bitskip.kernels.f64.Quantize.activationForward(outD, null, scaleD, toDouble(inp), N, C, 8);
        assertClose("activation scale", scaleD, scale, N, 0.0, 0.0);
        assertClose("activation out", outD, out, N * C, 1e-6, 1e-7);
    }

    @Test
    void activationBackwardIsStraightThrough() {
        int n = 23;
        float[] dinp = toFloat(gaussian(31, n)), dout = toFloat(gaussian(32, n));
        float[] expected = new float[n];
        for (int i = 0; i < n; i++) {
            expected[i] = dinp[i] + dout[i];
        }
        Quantize.activationBackward(dinp, dout, n);
        assertArrayEquals(expected, dinp);
    }

    // ---------------------------------------------------------------- quantization loss

    @Test
    void squaredErrorBackwardMatchesFiniteDifferences() {
        int n = 20;
        double scale = 0.37;
        double[] w = gaussian(40, n);
        double[] wHat = new double[n];
        // wHat is computed once and held fixed (stop-gradient): the loss only sees w move.
        bitskip.kernels.f64.Quantize.ternaryForward(wHat, null, w, n);
        java.util.function.DoubleSupplier loss = () -> scale * bitskip.kernels.f64.Quantize.squaredError(w, wHat, n);
        double[] dw = new double[n];
        bitskip.kernels.f64.Quantize.squaredErrorBackward(dw, w, wHat, n, scale);
        check("squaredError dw", w, dw, loss);
    }

    @Test
    void squaredErrorFloatMatchesDoubleTwin() {
        int n = 100;
        float[] w = toFloat(gaussian(41, n));
        float[] wHat = new float[n];
        Quantize.ternaryForward(wHat, null, w, n);
        double expected = bitskip.kernels.f64.Quantize.squaredError(toDouble(w), toDouble(wHat), n);
        assertEquals(expected, Quantize.squaredError(w, wHat, n), 1e-6 * expected);
        float[] dw = new float[n];
        double[] dwD = new double[n];
        Quantize.squaredErrorBackward(dw, w, wHat, n, 0.5f);
        bitskip.kernels.f64.Quantize.squaredErrorBackward(dwD, toDouble(w), toDouble(wHat), n, 0.5);
        assertClose("squaredErrorBackward", dwD, dw, n, 1e-6, 1e-7);
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Quantize.ternaryForward(new float[3], null, new float[4], 4));
        assertTrue(e.getMessage().contains("wHat"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Quantize.activationForward(null, null, new float[1], new float[8], 2, 4, 8));
        assertTrue(e.getMessage().contains("scale"), e.getMessage());
    }
}
