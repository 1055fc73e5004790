package bitskip.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;

class TernaryMatmulTest {

    @Test
    void integerAccumulationIsTheExactDotProduct() {
        Random r = new Random(3);
        int N = 3, C = 4096, OC = 5;
        byte[] q = new byte[N * C], codes = new byte[OC * C];
        for (int i = 0; i < q.length; i++) {
            q[i] = (byte) (r.nextBoolean() ? 127 : -127); // extreme codes: the largest possible sums
        }
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (i % 7 == 0 ? 0 : (r.nextInt(2) * 2 - 1));
        }
        codes[0] = 1;
        int[] acc = new int[N * OC];
        TernaryMatmul.forward(acc, q, codes, N, C, OC);
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < OC; o++) {
                long s = 0;
                for (int c = 0; c < C; c++) {
                    s += (long) codes[o * C + c] * q[n * C + c];
                }
                assertEquals(s, acc[n * OC + o]);
            }
        }
    }

    @Test
    void dequantizedOutputMatchesTheFloatBitLinearForward() {
        Random r = new Random(4);
        int N = 4, C = 96, OC = 33;
        float[] x = new float[N * C], w = new float[OC * C];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.02);
        }
        for (boolean relu2 : new boolean[] {false, true}) {
            for (int bits : new int[] {8, 4}) {
                float[] ref = new float[N * OC], pre = new float[N * OC], xHat = new float[N * C],
                        s = new float[N], wHat = new float[OC * C];
                float alpha = BitLinear.forward(ref, pre, xHat, s, wHat, x, w, N, C, OC, bits, true, relu2);

                byte[] codes = new byte[OC * C], q = new byte[N * C];
                float alpha2 = Quantize.ternaryForward(null, codes, w, OC * C);
                float[] s2 = new float[N];
                Quantize.activationForward(null, q, s2, x, N, C, bits);
                assertEquals(alpha, alpha2);
                assertArrayEquals(s, s2);
                int[] acc = new int[N * OC];
                TernaryMatmul.forward(acc, q, codes, N, C, OC);
                float[] y = new float[N * OC];
                TernaryMatmul.dequantize(y, acc, s2, alpha2, N, OC, bits, relu2);
                // The float path rounds C products and C sums; the integer path rounds twice. Relative 1e-5
                // of the row's absolute sum bounds both.
                for (int n = 0; n < N; n++) {
                    for (int o = 0; o < OC; o++) {
                        double bound = 0.0;
                        for (int c = 0; c < C; c++) {
                            bound += Math.abs(xHat[n * C + c] * wHat[o * C + c]);
                        }
                        if (relu2) {
                            bound = 2 * bound * bound + 1e-30;
                        }
                        assertEquals(ref[n * OC + o], y[n * OC + o], 1e-5 * bound + 1e-30, "n " + n + " o " + o);
                    }
                }
            }
        }
    }
}
