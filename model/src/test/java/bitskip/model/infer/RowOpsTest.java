package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.kernels.Hadamard;
import bitskip.kernels.LayerNorm;
import bitskip.kernels.Quantize;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The fused Hadamard path is bit-identical to the reference kernels composed (LayerNorm, pad, FWHT, quantize). */
class RowOpsTest {
    @Test
    void fusedHadamardQuantizeEqualsTheKernels() {
        Random r = new Random(5);
        for (int C : new int[] {32, 48, 100, 512, 1100, 2048}) {
            int P = Hadamard.nextPow2(C), N = 3;
            float[] x = new float[N * C], w = new float[C], b = new float[C];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) (r.nextGaussian() * 3);
            }
            for (int i = 0; i < C; i++) {
                w[i] = (float) (1 + 0.1 * r.nextGaussian());
                b[i] = (float) (0.1 * r.nextGaussian());
            }
            for (int bits : new int[] {8, 4}) {
                float[] ln = new float[N * C], mean = new float[N], rstd = new float[N], z = new float[N * P];
                LayerNorm.forward(ln, mean, rstd, x, w, b, N, C, 1e-5f);
                Hadamard.padForward(z, ln, N, C, P);
                Hadamard.forward(z, z, N, P);
                byte[] codes = new byte[N * P];
                float[] s = new float[N];
                Quantize.activationForward(null, codes, s, z, N, P, bits);

                int Cp = (P + 127) / 128 * 128;
                short[] q = new short[N * Cp];
                float[] scratch = new float[P];
                for (int n = 0; n < N; n++) {
                    float sn = RowOps.hadamardQuantize(q, n * Cp, Cp, x, n * C, C, P, w, b, 1e-5f, bits, scratch);
                    assertEquals(s[n], sn);
                    for (int p = 0; p < P; p++) {
                        assertEquals(codes[n * P + p], q[n * Cp + p], "C " + C + " row " + n + " col " + p);
                    }
                }
            }
        }
    }

    /**
     * Rows' LayerNorm statistics computed four at a time (interleaved sums) are the reference LayerNorm's mean and
     * rstd bit for bit, at every row count (fours, then the rest one by one).
     */
    @Test
    void interleavedRowStatisticsEqualTheReferenceLayerNorm() {
        Random r = new Random(9);
        for (int C : new int[] {1, 7, 256, 2048}) {
            for (int rows = 1; rows <= 9; rows++) {
                float[] x = new float[rows * C + 3];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) (r.nextGaussian() * 2 + 0.5);
                }
                float[] w = new float[C], b = new float[C], ln = new float[rows * C];
                java.util.Arrays.fill(w, 1.0f);
                float[] refMean = new float[rows], refRstd = new float[rows];
                float[] in = java.util.Arrays.copyOfRange(x, 3, x.length);
                LayerNorm.forward(ln, refMean, refRstd, in, w, b, rows, C, 1e-5f);
                float[] mean = new float[rows], rstd = new float[rows];
                RowOps.stats(x, 3, C, rows, 1e-5f, mean, rstd);
                assertArrayEquals(refMean, mean, "mean, C " + C + ", " + rows + " rows");
                assertArrayEquals(refRstd, rstd, "rstd, C " + C + ", " + rows + " rows");
            }
        }
    }

    /** The vector quantizer equals Quantize.activationForward, at any width, an all-zero row and exact halves included. */
    @Test
    void quantizeEqualsTheReferenceQuantizer() {
        Random r = new Random(6);
        for (int C : new int[] {1, 15, 16, 17, 100, 512, 777}) {
            for (int bits : new int[] {8, 4, 2}) {
                int N = 4;
                float[] x = new float[N * C];
                for (int i = 0; i < C; i++) {
                    x[i] = (float) (r.nextGaussian() * 5);
                    x[2 * C + i] = i % 3 == 0 ? 0.5f : -1.5f; // q·x/s lands exactly on halves: rint's tie to even
                    x[3 * C + i] = (float) (r.nextGaussian() * 1e-8); // below the 1e-6 floor of the scale
                }
                x[2 * C] = (float) ((1 << (bits - 1)) - 1) * 2; // the absmax making halves exact
                byte[] codes = new byte[N * C];
                float[] s = new float[N];
                Quantize.activationForward(null, codes, s, x, N, C, bits);
                int Cp = C + 5;
                short[] q = new short[N * Cp];
                java.util.Arrays.fill(q, (short) 99);
                for (int n = 0; n < N; n++) {
                    assertEquals(s[n], RowOps.quantize(q, n * Cp, Cp, x, n * C, C, bits), "scale, C " + C + " row " + n);
                    for (int c = 0; c < C; c++) {
                        assertEquals(codes[n * C + c], q[n * Cp + c], "C " + C + " bits " + bits + " row " + n + " col " + c);
                    }
                    for (int c = C; c < Cp; c++) {
                        assertEquals(0, q[n * Cp + c], "padding");
                    }
                }
            }
        }
    }

    @Test
    void vectorScalingEqualsTheScalarLoop() {
        Random r = new Random(3);
        int n = 301;
        int[] acc = new int[n];
        for (int i = 0; i < n; i++) {
            acc[i] = i % 7 == 0 ? 0 : r.nextInt(2_000_001) - 1_000_000;
        }
        for (float f : new float[] {3.1e-5f, -7.7e-4f, 1.0f}) {
            for (int times = 0; times <= 2; times++) {
                for (int[] range : new int[][] {{0, n - 4}, {5, 290}, {17, 18}, {40, 40}}) { // rows from base 4
                    float[] y = new float[n];
                    RowOps.scaleInts(y, acc, 4, range[0], range[1], f, times);
                    for (int o = range[0]; o < range[1]; o++) {
                        float v = acc[4 + o] * f;
                        for (int t = 0; t < times; t++) {
                            float q = v > 0.0f ? v : 0.0f;
                            v = q * q;
                        }
                        assertEquals(Float.floatToRawIntBits(v), Float.floatToRawIntBits(y[4 + o]),
                                "f " + f + " relu2 x" + times + " element " + o);
                    }
                }
            }
        }
    }
}
