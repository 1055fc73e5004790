package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class CrossEntropyTest {
    static final int R = 5, V = 7;
    static final int[] TARGETS = {3, -1, 0, 6, 2};

    @Test
    void gradientMatchesFiniteDifferencesOfTheLoss() {
        double[] logits = gaussian(1, R * V);
        for (int i = 0; i < logits.length; i++) {
            logits[i] *= 3.0; // a peaked softmax as well as flat ones
        }
        double[] dlogits = new double[R * V];
        double loss = bitskip.kernels.f64.CrossEntropy.forwardBackward(logits, dlogits, TARGETS, R, V, 1.0);
        assertTrue(loss > 0.0);
        check("CrossEntropy dlogits", logits, dlogits,
                () -> bitskip.kernels.f64.CrossEntropy.forwardBackward(logits, null, TARGETS, R, V, 1.0));
        // gradScale scales the gradient only; the returned loss is the plain sum
        double[] scaled = new double[R * V];
        double loss2 = bitskip.kernels.f64.CrossEntropy.forwardBackward(logits, scaled, TARGETS, R, V, 0.25);
        assertEquals(loss, loss2, 0.0);
        for (int i = 0; i < R * V; i++) {
            assertEquals(0.25 * dlogits[i], scaled[i], 1e-15);
        }
    }

    @Test
    void floatKernelMatchesDoubleTwinAtGpt2Vocabulary() {
        // V = 50257: the exp-sum is accumulated in double, so the float kernel's loss is nearly the twin's
        int r = 3, v = 50257;
        int[] targets = {17, -1, 50256};
        float[] logits = toFloat(gaussian(2, r * v));
        float[] dlogits = new float[r * v];
        double[] dlogitsD = new double[r * v];
        double loss = CrossEntropy.forwardBackward(logits, dlogits, targets, r, v, 0.5f);
        double lossD = bitskip.kernels.f64.CrossEntropy.forwardBackward(toDouble(logits), dlogitsD, targets, r, v, 0.5);
        // the only float roundings left are in x − max (each exp argument off by an ulp): ~1e-10 here;
        // a float exp-sum over 50257 terms is off by ~3e-7, which this tolerance rejects
        assertEquals(lossD, loss, 1e-8);
        assertClose("CrossEntropy dlogits", dlogitsD, dlogits, r * v, 1e-5, 1e-10);
    }

    @Test
    void ignoredRowsGiveNoLossAndZeroGradient() {
        float[] logits = toFloat(gaussian(3, R * V));
        float[] dlogits = new float[R * V];
        java.util.Arrays.fill(dlogits, 7.0f); // overwritten, not accumulated
        double all = CrossEntropy.forwardBackward(logits, dlogits, TARGETS, R, V, 1.0f);
        for (int i = 0; i < V; i++) {
            assertEquals(0.0f, dlogits[1 * V + i], "row 1 is ignored");
        }
        // the sum equals the rows taken one at a time, the ignored one contributing nothing
        double sum = 0.0;
        for (int row = 0; row < R; row++) {
            float[] one = java.util.Arrays.copyOfRange(logits, row * V, row * V + V);
            sum += CrossEntropy.forwardBackward(one, null, new int[] {TARGETS[row]}, 1, V, 1.0f);
        }
        assertEquals(sum, all, 1e-9);
        assertEquals(0.0, CrossEntropy.forwardBackward(logits, null, new int[] {-1, -1, -1, -1, -1}, R, V, 1.0f));
        // a non-ignored row's gradient sums to zero (softmax minus one-hot)
        double g = 0.0;
        for (int i = 0; i < V; i++) {
            g += dlogits[i];
        }
        assertEquals(0.0, g, 1e-6);
    }

    @Test
    void rowLossesAreTheRowsOfTheSum() {
        float[] logits = toFloat(gaussian(11, R * V));
        float[] d1 = new float[R * V], d2 = new float[R * V];
        double all = CrossEntropy.forwardBackward(logits, d1, TARGETS, R, V, 0.5f);
        double[] rows = new double[R];
        CrossEntropy.rowLosses(logits, d2, TARGETS, R, V, 0.5f, rows);
        double sum = 0.0;
        for (double l : rows) {
            sum += l;
        }
        assertEquals(all, sum, 0.0, "the same rows summed in the same order");
        assertEquals(0.0, rows[1], "row 1 is ignored");
        assertArrayEquals(d1, d2);
    }

    @Test
    void uniformLogitsGiveLogV() {
        int v = 50257;
        float[] logits = new float[2 * v];
        java.util.Arrays.fill(logits, 3.25f);
        double loss = CrossEntropy.forwardBackward(logits, null, new int[] {5, 50000}, 2, v, 1.0f);
        assertEquals(2.0 * Math.log(v), loss, 1e-9);
    }

    @Test
    void largeLogitsDoNotOverflow() {
        float[] logits = {1000.0f, 999.0f, -1000.0f};
        float[] d = new float[3];
        double loss = CrossEntropy.forwardBackward(logits, d, new int[] {1}, 1, 3, 1.0f);
        assertEquals(1.0 + Math.log(1.0 + Math.exp(-1.0)), loss, 1e-6);
        assertFalse(Float.isNaN(d[0]) || Float.isNaN(d[1]));
    }

    @Test
    void gradientMayOverwriteTheLogits() {
        float[] logits = toFloat(gaussian(4, R * V));
        float[] d = new float[R * V];
        double loss = CrossEntropy.forwardBackward(logits, d, TARGETS, R, V, 1.0f);
        float[] inPlace = logits.clone();
        double loss2 = CrossEntropy.forwardBackward(inPlace, inPlace, TARGETS, R, V, 1.0f);
        assertEquals(loss, loss2, 0.0);
        assertArrayEquals(d, inPlace);
    }

    @Test
    void badTargetsAndDimensionsNameTheArgument() {
        float[] logits = new float[R * V];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CrossEntropy.forwardBackward(logits, null, new int[] {0, 1, V, 2, 3}, R, V, 1.0f));
        assertTrue(e.getMessage().contains("targets[2]") && e.getMessage().contains("= " + V), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CrossEntropy.forwardBackward(logits, null, new int[] {0, -2, 1, 2, 3}, R, V, 1.0f));
        assertTrue(e.getMessage().contains("targets[1]") && e.getMessage().contains("-2"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CrossEntropy.forwardBackward(logits, null, new int[R - 1], R, V, 1.0f));
        assertTrue(e.getMessage().contains("targets"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CrossEntropy.forwardBackward(logits, new float[R * V - 1], TARGETS, R, V, 1.0f));
        assertTrue(e.getMessage().contains("dlogits"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> CrossEntropy.forwardBackward(logits, null, TARGETS, R, V + 1, 1.0f));
        assertTrue(e.getMessage().contains("logits"), e.getMessage());
    }
}
