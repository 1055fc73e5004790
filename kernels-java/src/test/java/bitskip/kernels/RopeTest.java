package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class RopeTest {
    static final int B = 2, T = 3, NH = 2, HS = 8, MAXT = 16, POS0 = 5;
    static final int SIZE = B * T * NH * HS;

    static double[][] tableD(int maxT, int hs) {
        double[] cos = new double[maxT * hs / 2], sin = new double[maxT * hs / 2];
        bitskip.kernels.f64.Rope.table(cos, sin, maxT, hs, 10000.0);
        return new double[][] {cos, sin};
    }

    static float[][] tableF(int maxT, int hs) {
        float[] cos = new float[maxT * hs / 2], sin = new float[maxT * hs / 2];
        Rope.table(cos, sin, maxT, hs, 10000.0f);
        return new float[][] {cos, sin};
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        double[][] cs = tableD(MAXT, HS);
        double[] inp = gaussian(1, SIZE), r = gaussian(2, SIZE);
        double[] out = new double[SIZE];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Rope.forward(out, inp, cs[0], cs[1], B, T, NH, HS, POS0);
            return dot(out, r, SIZE);
        };
        double[] dinp = new double[SIZE];
        bitskip.kernels.f64.Rope.backward(dinp, r, cs[0], cs[1], B, T, NH, HS, POS0);
        check("Rope dinp", inp, dinp, loss);
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[][] cs = tableF(MAXT, HS);
        double[][] csD = tableD(MAXT, HS);
        assertClose("Rope cos table", csD[0], cs[0], MAXT * HS / 2, 0.0, 1e-7);
        assertClose("Rope sin table", csD[1], cs[1], MAXT * HS / 2, 0.0, 1e-7);
        float[] inp = toFloat(gaussian(3, SIZE)), dout = toFloat(gaussian(4, SIZE));
        float[] out = new float[SIZE], dinp = new float[SIZE];
        double[] outD = new double[SIZE], dinpD = new double[SIZE];
        Rope.forward(out, inp, cs[0], cs[1], B, T, NH, HS, POS0);
        Rope.backward(dinp, dout, cs[0], cs[1], B, T, NH, HS, POS0);
        bitskip.kernels.f64.Rope.forward(outD, toDouble(inp), csD[0], csD[1], B, T, NH, HS, POS0);
        bitskip.kernels.f64.Rope.backward(dinpD, toDouble(dout), csD[0], csD[1], B, T, NH, HS, POS0);
        assertClose("Rope forward", outD, out, SIZE, 1e-5, 1e-6);
        assertClose("Rope backward", dinpD, dinp, SIZE, 1e-5, 1e-6);
    }

    @Test
    void tableValuesAndRotateHalfPairing() {
        int hs = 4;
        double[][] cs = tableD(3, hs);
        // frequencies for HS = 4: theta^0 = 1 and theta^(-1/2) = 0.01
        assertEquals(1.0, cs[0][0], 0.0);
        assertEquals(Math.cos(2.0), cs[0][2 * 2], 1e-15);
        assertEquals(Math.sin(2.0 * 0.01), cs[1][2 * 2 + 1], 1e-15);
        // a unit vector in dimension 0 at position 1 moves to dimension 0 + HS/2, not to dimension 1
        double[] x = {1, 0, 0, 0}, y = new double[4];
        bitskip.kernels.f64.Rope.forward(y, x, cs[0], cs[1], 1, 1, 1, hs, 1);
        assertArrayEquals(new double[] {Math.cos(1.0), 0, Math.sin(1.0), 0}, y, 1e-15);
    }

    @Test
    void preservesTheNormOfEveryPair() {
        double[][] cs = tableD(MAXT, HS);
        double[] inp = gaussian(5, SIZE), out = new double[SIZE];
        bitskip.kernels.f64.Rope.forward(out, inp, cs[0], cs[1], B, T, NH, HS, POS0);
        boolean changed = false;
        for (int base = 0; base < SIZE; base += HS) {
            for (int j = 0; j < HS / 2; j++) {
                double a = Math.hypot(inp[base + j], inp[base + j + HS / 2]);
                double b = Math.hypot(out[base + j], out[base + j + HS / 2]);
                assertEquals(a, b, 1e-12 * (1 + a), "pair " + j + " at " + base);
                changed |= Math.abs(out[base + j] - inp[base + j]) > 1e-6;
            }
        }
        assertTrue(changed, "rotation did nothing");
    }

    @Test
    void positionZeroIsIdentity() {
        float[][] cs = tableF(MAXT, HS);
        int size = NH * HS;
        float[] inp = toFloat(gaussian(6, size)), out = new float[size];
        Rope.forward(out, inp, cs[0], cs[1], 1, 1, NH, HS, 0);
        assertArrayEquals(inp, out, 0.0f);
    }

    /** q·k after rotating q to position m and k to position n depends only on m − n. */
    @Test
    void dotProductDependsOnlyOnRelativePosition() {
        int maxT = 200;
        double[][] cs = tableD(maxT, HS);
        double[] q = gaussian(7, HS), k = gaussian(8, HS);
        double base = rotatedDot(cs, q, 3, k, 1);
        for (int shift : new int[] {1, 10, 150}) {
            assertEquals(base, rotatedDot(cs, q, 3 + shift, k, 1 + shift), 1e-10, "shift " + shift);
        }
        // and it does depend on the difference (otherwise the check above would be vacuous)
        assertTrue(Math.abs(base - rotatedDot(cs, q, 5, k, 1)) > 1e-3);
        // the float kernel too, within float precision
        float[][] csF = tableF(maxT, HS);
        float[] qF = toFloat(q), kF = toFloat(k);
        assertEquals(rotatedDotF(csF, qF, 3, kF, 1), rotatedDotF(csF, qF, 150, kF, 148), 1e-4);
    }

    static double rotatedDot(double[][] cs, double[] q, int m, double[] k, int n) {
        double[] qr = new double[HS], kr = new double[HS];
        bitskip.kernels.f64.Rope.forward(qr, q, cs[0], cs[1], 1, 1, 1, HS, m);
        bitskip.kernels.f64.Rope.forward(kr, k, cs[0], cs[1], 1, 1, 1, HS, n);
        return dot(qr, kr, HS);
    }

    static double rotatedDotF(float[][] cs, float[] q, int m, float[] k, int n) {
        float[] qr = new float[HS], kr = new float[HS];
        Rope.forward(qr, q, cs[0], cs[1], 1, 1, 1, HS, m);
        Rope.forward(kr, k, cs[0], cs[1], 1, 1, 1, HS, n);
        return dot(toDouble(qr), toDouble(kr), HS);
    }

    /** Rotating steps [s, T) of a sequence with pos0 = s equals rotating the whole sequence and slicing. */
    @Test
    void pos0OffsetEqualsSlicingALongerSequence() {
        int tLong = 7, s = 4, tShort = tLong - s, row = NH * HS;
        float[][] cs = tableF(MAXT, HS);
        float[] full = toFloat(gaussian(9, B * tLong * row)), fullOut = new float[full.length];
        Rope.forward(fullOut, full, cs[0], cs[1], B, tLong, NH, HS, 0);
        float[] part = new float[B * tShort * row], partOut = new float[part.length];
        for (int b = 0; b < B; b++) {
            System.arraycopy(full, (b * tLong + s) * row, part, b * tShort * row, tShort * row);
        }
        Rope.forward(partOut, part, cs[0], cs[1], B, tShort, NH, HS, s);
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < tShort * row; i++) {
                assertEquals(fullOut[(b * tLong + s) * row + i], partOut[b * tShort * row + i], 0.0f);
            }
        }
    }

    @Test
    void inPlaceForwardEqualsOutOfPlace() {
        float[][] cs = tableF(MAXT, HS);
        float[] inp = toFloat(gaussian(10, SIZE)), out = new float[SIZE], same = inp.clone();
        Rope.forward(out, inp, cs[0], cs[1], B, T, NH, HS, POS0);
        Rope.forward(same, same, cs[0], cs[1], B, T, NH, HS, POS0);
        assertArrayEquals(out, same, 0.0f);
    }

    @Test
    void backwardAccumulatesAndInvertsForward() {
        // the rotation is orthogonal: backward applied to forward's output gives back the input
        float[][] cs = tableF(MAXT, HS);
        float[] inp = toFloat(gaussian(11, SIZE)), out = new float[SIZE], back = new float[SIZE];
        Rope.forward(out, inp, cs[0], cs[1], B, T, NH, HS, POS0);
        Rope.backward(back, out, cs[0], cs[1], B, T, NH, HS, POS0);
        assertArrayEquals(inp, back, 1e-5f);
        Rope.backward(back, out, cs[0], cs[1], B, T, NH, HS, POS0);
        for (int i = 0; i < SIZE; i++) {
            assertEquals(2 * inp[i], back[i], 1e-5f);
        }
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        float[][] cs = tableF(MAXT, HS);
        float[] x = new float[SIZE], y = new float[SIZE];
        EmbeddingTest.assertMessage("HS", () -> Rope.table(new float[100], new float[100], 4, 7, 10000.0f));
        EmbeddingTest.assertMessage("theta", () -> Rope.table(cs[0], cs[1], MAXT, HS, 0.0f));
        EmbeddingTest.assertMessage("sin", () -> Rope.table(cs[0], new float[3], MAXT, HS, 10000.0f));
        EmbeddingTest.assertMessage("HS", () -> Rope.forward(y, x, cs[0], cs[1], B, T, NH, HS - 1, 0));
        EmbeddingTest.assertMessage("inp", () -> Rope.forward(y, new float[SIZE - 1], cs[0], cs[1], B, T, NH, HS, 0));
        EmbeddingTest.assertMessage("cos", () -> Rope.forward(y, x, cs[0], cs[1], B, T, NH, HS, MAXT - T + 1));
        EmbeddingTest.assertMessage("pos0", () -> Rope.forward(y, x, cs[0], cs[1], B, T, NH, HS, -1));
        EmbeddingTest.assertMessage("dinp", () -> Rope.backward(new float[1], y, cs[0], cs[1], B, T, NH, HS, 0));
        EmbeddingTest.assertMessage("NH", () -> Rope.forward(y, x, cs[0], cs[1], B, T, 0, HS, 0));
    }
}
