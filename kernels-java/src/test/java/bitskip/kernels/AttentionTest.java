package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class AttentionTest {
    static final int B = 2, T = 5, NH = 4, NKV = 2, HS = 3;
    static final int QN = B * T * NH * HS, KN = B * T * NKV * HS, PN = B * NH * T * T;

    /** A dropout mask with p = 0.25: each entry 0 or 1/(1-p). */
    static double[] dropMask(long seed) {
        Random rng = new Random(seed);
        double[] m = new double[PN];
        for (int i = 0; i < PN; i++) {
            m[i] = rng.nextDouble() < 0.25 ? 0.0 : 1.0 / 0.75;
        }
        return m;
    }

    private void checkBackward(double[] mask) {
        double[] q = gaussian(1, QN), k = gaussian(2, KN), v = gaussian(3, KN), r = gaussian(4, QN);
        double[] out = new double[QN], probs = new double[PN];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Attention.forward(out, probs, q, k, v, mask, B, T, NH, NKV, HS);
            return dot(out, r, QN);
        };
        loss.getAsDouble();
        double[] dq = new double[QN], dk = new double[KN], dv = new double[KN], scratch = new double[T];
        bitskip.kernels.f64.Attention.backward(dq, dk, dv, scratch, r, q, k, v, probs, mask, B, T, NH, NKV, HS);
        String tag = mask == null ? "" : " (dropout)";
        check("Attention dq" + tag, q, dq, loss);
        check("Attention dk" + tag, k, dk, loss);
        check("Attention dv" + tag, v, dv, loss);
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        checkBackward(null);
    }

    @Test
    void backwardWithDropoutMatchesFiniteDifferences() {
        checkBackward(dropMask(5));
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[] q = toFloat(gaussian(6, QN)), k = toFloat(gaussian(7, KN)), v = toFloat(gaussian(8, KN));
        float[] dout = toFloat(gaussian(9, QN)), mask = toFloat(dropMask(10));
        float[] out = new float[QN], probs = new float[PN];
        float[] dq = new float[QN], dk = new float[KN], dv = new float[KN], scratch = new float[T];
        Attention.forward(out, probs, q, k, v, mask, B, T, NH, NKV, HS);
        Attention.backward(dq, dk, dv, scratch, dout, q, k, v, probs, mask, B, T, NH, NKV, HS);
        double[] outD = new double[QN], probsD = new double[PN];
        double[] dqD = new double[QN], dkD = new double[KN], dvD = new double[KN], scratchD = new double[T];
        double[] qD = toDouble(q), kD = toDouble(k), vD = toDouble(v), maskD = toDouble(mask);
        bitskip.kernels.f64.Attention.forward(outD, probsD, qD, kD, vD, maskD, B, T, NH, NKV, HS);
        bitskip.kernels.f64.Attention.backward(dqD, dkD, dvD, scratchD, toDouble(dout), qD, kD, vD, probsD, maskD,
                B, T, NH, NKV, HS);
        // float sums of at most T·HS terms of order 1: a few ulps of float each
        assertClose("Attention out", outD, out, QN, 1e-5, 1e-6);
        assertClose("Attention probs", probsD, probs, PN, 1e-5, 1e-7);
        assertClose("Attention dq", dqD, dq, QN, 1e-5, 1e-6);
        assertClose("Attention dk", dkD, dk, KN, 1e-5, 1e-6);
        assertClose("Attention dv", dvD, dv, KN, 1e-5, 1e-6);
    }

    @Test
    void probsRowsSumToOneAndAreZeroAboveTheDiagonal() {
        float[] q = toFloat(gaussian(11, QN)), k = toFloat(gaussian(12, KN)), v = toFloat(gaussian(13, KN));
        float[] out = new float[QN], probs = new float[PN];
        java.util.Arrays.fill(probs, Float.NaN); // every entry must be written
        Attention.forward(out, probs, q, k, v, null, B, T, NH, NKV, HS);
        for (int row = 0; row < B * NH * T; row++) {
            int t = row % T;
            double sum = 0.0;
            for (int s = 0; s < T; s++) {
                float p = probs[row * T + s];
                if (s > t) {
                    assertEquals(0.0f, p, "probs above the diagonal, row " + row + " key " + s);
                } else {
                    assertTrue(p > 0.0f && p <= 1.0f, "probs row " + row + " key " + s + " = " + p);
                }
                sum += p;
            }
            assertEquals(1.0, sum, 1e-6, "probs row " + row);
        }
        // the first query sees only itself: out_0 = v_0 of its KV head
        for (int h = 0; h < NH; h++) {
            for (int i = 0; i < HS; i++) {
                assertEquals(v[(h / (NH / NKV)) * HS + i], out[h * HS + i], 1e-6f);
            }
        }
    }

    @Test
    void aFutureTokenChangesNoEarlierOutput() {
        int t0 = 2;
        float[] q = toFloat(gaussian(14, QN)), k = toFloat(gaussian(15, KN)), v = toFloat(gaussian(16, KN));
        float[] out = new float[QN], probs = new float[PN];
        Attention.forward(out, probs, q, k, v, null, B, T, NH, NKV, HS);
        float[] q2 = q.clone(), k2 = k.clone(), v2 = v.clone();
        for (int b = 0; b < B; b++) {
            for (int i = 0; i < NH * HS; i++) {
                q2[(b * T + t0) * NH * HS + i] += 1.5f;
            }
            for (int i = 0; i < NKV * HS; i++) {
                k2[(b * T + t0) * NKV * HS + i] -= 2.0f;
                v2[(b * T + t0) * NKV * HS + i] += 3.0f;
            }
        }
        float[] out2 = new float[QN], probs2 = new float[PN];
        Attention.forward(out2, probs2, q2, k2, v2, null, B, T, NH, NKV, HS);
        boolean laterChanged = false;
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                for (int i = 0; i < NH * HS; i++) {
                    int idx = (b * T + t) * NH * HS + i;
                    if (t < t0) {
                        assertEquals(Float.floatToRawIntBits(out[idx]), Float.floatToRawIntBits(out2[idx]),
                                "output row t=" + t + " changed by token " + t0);
                    } else if (out[idx] != out2[idx]) {
                        laterChanged = true;
                    }
                }
            }
        }
        assertTrue(laterChanged, "the perturbation must reach rows >= t0, or the test proves nothing");
    }

    @Test
    void queryHeadsReadTheirKvHeadAsIfRepeated() {
        // Expected: repeat each KV head for its NH/NKV query heads (head h reads KV head h/2) and run
        // ordinary multi-head attention with NKV = NH.
        float[] q = toFloat(gaussian(17, QN)), k = toFloat(gaussian(18, KN)), v = toFloat(gaussian(19, KN));
        float[] mask = toFloat(dropMask(20));
        float[] kRep = new float[QN], vRep = new float[QN];
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                for (int h = 0; h < NH; h++) {
                    for (int i = 0; i < HS; i++) {
                        kRep[((b * T + t) * NH + h) * HS + i] = k[((b * T + t) * NKV + h / 2) * HS + i];
                        vRep[((b * T + t) * NH + h) * HS + i] = v[((b * T + t) * NKV + h / 2) * HS + i];
                    }
                }
            }
        }
        float[] out = new float[QN], probs = new float[PN], outRep = new float[QN], probsRep = new float[PN];
        Attention.forward(out, probs, q, k, v, mask, B, T, NH, NKV, HS);
        Attention.forward(outRep, probsRep, q, kRep, vRep, mask, B, T, NH, NH, HS);
        assertArrayEquals(outRep, out);
        assertArrayEquals(probsRep, probs);
        // and the gradient of a shared KV head is the sum over the query heads it serves
        float[] dout = toFloat(gaussian(21, QN));
        float[] dq = new float[QN], dk = new float[KN], dv = new float[KN], scratch = new float[T];
        float[] dqRep = new float[QN], dkRep = new float[QN], dvRep = new float[QN];
        Attention.backward(dq, dk, dv, scratch, dout, q, k, v, probs, mask, B, T, NH, NKV, HS);
        Attention.backward(dqRep, dkRep, dvRep, scratch, dout, q, kRep, vRep, probsRep, mask, B, T, NH, NH, HS);
        assertArrayEquals(dqRep, dq, 1e-6f);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                for (int j = 0; j < NKV; j++) {
                    for (int i = 0; i < HS; i++) {
                        int r0 = ((b * T + t) * NH + 2 * j) * HS + i, r1 = r0 + HS;
                        int o = ((b * T + t) * NKV + j) * HS + i;
                        assertEquals(dkRep[r0] + dkRep[r1], dk[o], 1e-5f, "dk");
                        assertEquals(dvRep[r0] + dvRep[r1], dv[o], 1e-5f, "dv");
                    }
                }
            }
        }
    }

    @Test
    void backwardAccumulates() {
        float[] q = toFloat(gaussian(22, QN)), k = toFloat(gaussian(23, KN)), v = toFloat(gaussian(24, KN));
        float[] dout = toFloat(gaussian(25, QN)), out = new float[QN], probs = new float[PN], scratch = new float[T];
        Attention.forward(out, probs, q, k, v, null, B, T, NH, NKV, HS);
        float[] dq1 = new float[QN], dk1 = new float[KN], dv1 = new float[KN];
        float[] dq2 = new float[QN], dk2 = new float[KN], dv2 = new float[KN];
        Attention.backward(dq1, dk1, dv1, scratch, dout, q, k, v, probs, null, B, T, NH, NKV, HS);
        Attention.backward(dq2, dk2, dv2, scratch, dout, q, k, v, probs, null, B, T, NH, NKV, HS);
        Attention.backward(dq2, dk2, dv2, scratch, dout, q, k, v, probs, null, B, T, NH, NKV, HS);
        for (int i = 0; i < QN; i++) {
            assertEquals(2 * dq1[i], dq2[i], 1e-5f);
        }
        for (int i = 0; i < KN; i++) {
            assertEquals(2 * dk1[i], dk2[i], 1e-5f);
            assertEquals(2 * dv1[i], dv2[i], 1e-5f);
        }
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        float[] q = new float[QN], k = new float[KN], v = new float[KN], out = new float[QN], probs = new float[PN];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Attention.forward(out, probs, q, k, v, null, B, T, NH, 3, HS));
        assertTrue(e.getMessage().contains("NKV"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Attention.forward(out, new float[PN - 1], q, k, v, null, B, T, NH, NKV, HS));
        assertTrue(e.getMessage().contains("probs"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Attention.forward(out, probs, q, k, v, new float[PN - 1], B, T, NH, NKV, HS));
        assertTrue(e.getMessage().contains("dropMask"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Attention.forward(out, probs, q, new float[KN - 1], v, null, B, T, NH, NKV, HS));
        assertTrue(e.getMessage().contains("argument k "), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.backward(new float[QN], new float[KN],
                new float[KN], new float[T - 1], out, q, k, v, probs, null, B, T, NH, NKV, HS));
        assertTrue(e.getMessage().contains("scratch"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Attention.backward(new float[QN], new float[KN - 1],
                new float[KN], new float[T], out, q, k, v, probs, null, B, T, NH, NKV, HS));
        assertTrue(e.getMessage().contains("dk"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Attention.forward(out, probs, q, k, v, null, B, T, NH, NKV, 0));
        assertTrue(e.getMessage().contains("HS"), e.getMessage());
    }
}
