package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.apache.commons.math3.transform.FastHadamardTransformer;
import org.apache.commons.math3.transform.TransformType;
import org.junit.jupiter.api.Test;

class HadamardTest {

    /** The Sylvester Hadamard matrix: H_1 = [1], H_2k = [[H_k, H_k], [H_k, -H_k]], built recursively. */
    static int[][] sylvester(int n) {
        if (n == 1) {
            return new int[][] {{1}};
        }
        int[][] h = sylvester(n / 2);
        int k = n / 2;
        int[][] m = new int[n][n];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) {
                m[i][j] = h[i][j];
                m[i][j + k] = h[i][j];
                m[i + k][j] = h[i][j];
                m[i + k][j + k] = -h[i][j];
            }
        }
        return m;
    }

    @Test
    void nextPow2() {
        assertEquals(1, Hadamard.nextPow2(1));
        assertEquals(2, Hadamard.nextPow2(2));
        assertEquals(4, Hadamard.nextPow2(3));
        assertEquals(8, Hadamard.nextPow2(5));
        assertEquals(8, Hadamard.nextPow2(8));
        assertEquals(16, Hadamard.nextPow2(9));
        assertEquals(1024, Hadamard.nextPow2(768));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Hadamard.nextPow2(0));
        assertTrue(e.getMessage().contains("n"), e.getMessage());
    }

    @Test
    void matchesExplicitSylvesterMatrix() {
        for (int P : new int[] {1, 2, 4, 8, 16, 64}) {
            int N = 3;
            double[] inp = gaussian(100 + P, N * P);
            double[] out = new double[N * P];
            bitskip.kernels.f64.Hadamard.forward(out, inp, N, P);
            int[][] h = sylvester(P);
            double[] expected = new double[N * P];
            for (int n = 0; n < N; n++) {
                for (int i = 0; i < P; i++) {
                    double acc = 0.0;
                    for (int j = 0; j < P; j++) {
                        acc += h[i][j] * inp[n * P + j];
                    }
                    expected[n * P + i] = acc / Math.sqrt(P);
                }
            }
            for (int i = 0; i < N * P; i++) {
                assertEquals(expected[i], out[i], 1e-12, "P " + P + " element " + i);
            }
        }
    }

    @Test
    void matchesCommonsMathUpToItsScaling() {
        // commons-math's FORWARD transform is the unnormalized y = H·x (its INVERSE divides by n), in the
        // same natural order: our orthonormal transform is it divided by sqrt(P).
        FastHadamardTransformer fht = new FastHadamardTransformer();
        for (int P : new int[] {2, 8, 32, 256}) {
            double[] x = gaussian(200 + P, P);
            double[] ref = fht.transform(x.clone(), TransformType.FORWARD);
            double[] out = new double[P];
            bitskip.kernels.f64.Hadamard.forward(out, x, 1, P);
            for (int i = 0; i < P; i++) {
                assertEquals(ref[i] / Math.sqrt(P), out[i], 1e-12, "P " + P + " element " + i);
            }
            // and our transform applied twice is the identity, where commons-math needs INVERSE (1/n scaling)
            double[] back = fht.transform(ref, TransformType.INVERSE);
            for (int i = 0; i < P; i++) {
                assertEquals(x[i], back[i], 1e-12);
            }
        }
    }

    @Test
    void selfInverseAndNormPreserving() {
        int N = 4, P = 128;
        float[] inp = toFloat(gaussian(300, N * P));
        float[] once = new float[N * P], twice = new float[N * P];
        Hadamard.forward(once, inp, N, P);
        Hadamard.forward(twice, once, N, P);
        for (int n = 0; n < N; n++) {
            double nIn = 0.0, nOut = 0.0;
            for (int p = 0; p < P; p++) {
                nIn += (double) inp[n * P + p] * inp[n * P + p];
                nOut += (double) once[n * P + p] * once[n * P + p];
                assertEquals(inp[n * P + p], twice[n * P + p], 1e-5f);
            }
            assertEquals(nIn, nOut, 1e-5 * nIn);
        }
    }

    @Test
    void inPlaceEqualsOutOfPlace() {
        int N = 3, P = 16;
        float[] inp = toFloat(gaussian(301, N * P));
        float[] out = new float[N * P];
        Hadamard.forward(out, inp, N, P);
        Hadamard.forward(inp, inp, N, P);
        assertArrayEquals(out, inp);
    }

    @Test
    void padsNonPowerOfTwoWithZerosAndUnpadsTheGradient() {
        int N = 2, C = 5, P = Hadamard.nextPow2(C);
        assertEquals(8, P);
        float[] inp = toFloat(gaussian(302, N * C));
        float[] out = new float[N * P];
        java.util.Arrays.fill(out, Float.NaN);
        Hadamard.padForward(out, inp, N, C, P);
        for (int n = 0; n < N; n++) {
            for (int p = 0; p < P; p++) {
                assertEquals(p < C ? inp[n * C + p] : 0.0f, out[n * P + p]);
            }
        }
        float[] dout = toFloat(gaussian(303, N * P));
        float[] dinp = toFloat(gaussian(304, N * C));
        float[] expected = dinp.clone();
        for (int n = 0; n < N; n++) {
            for (int c = 0; c < C; c++) {
                expected[n * C + c] += dout[n * P + c];
            }
        }
        Hadamard.padBackward(dinp, dout, N, C, P);
        assertArrayEquals(expected, dinp);
    }

    @Test
    void backwardMatchesFiniteDifferences() {
        int N = 3, C = 5, P = 8;
        double[] inp = gaussian(400, N * C), r = gaussian(401, N * P);
        double[] padded = new double[N * P], z = new double[N * P];
        // the pad + transform chain of H-BitLinear, L = Σ z·r
        java.util.function.DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Hadamard.padForward(padded, inp, N, C, P);
            bitskip.kernels.f64.Hadamard.forward(z, padded, N, P);
            return dot(z, r, N * P);
        };
        double[] dpadded = new double[N * P], scratch = new double[N * P], dinp = new double[N * C];
        bitskip.kernels.f64.Hadamard.backward(dpadded, r, scratch, N, P);
        bitskip.kernels.f64.Hadamard.padBackward(dinp, dpadded, N, C, P);
        check("Hadamard+pad dinp", inp, dinp, loss);

        // the transform alone, and backward accumulates
        double[] x = gaussian(402, N * P);
        java.util.function.DoubleSupplier loss2 = () -> {
            bitskip.kernels.f64.Hadamard.forward(z, x, N, P);
            return dot(z, r, N * P);
        };
        double[] dx = new double[N * P];
        bitskip.kernels.f64.Hadamard.backward(dx, r, scratch, N, P);
        check("Hadamard dinp", x, dx, loss2);
        double[] dx2 = dx.clone();
        bitskip.kernels.f64.Hadamard.backward(dx2, r, scratch, N, P);
        for (int i = 0; i < N * P; i++) {
            assertEquals(2 * dx[i], dx2[i], 1e-12);
        }
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        int N = 5, P = 64;
        float[] inp = toFloat(gaussian(500, N * P)), dout = toFloat(gaussian(501, N * P));
        float[] out = new float[N * P], dinp = new float[N * P], scratch = new float[N * P];
        double[] outD = new double[N * P], dinpD = new double[N * P], scratchD = new double[N * P];
        Hadamard.forward(out, inp, N, P);
        bitskip.kernels.f64.Hadamard.forward(outD, toDouble(inp), N, P);
        assertClose("Hadamard forward", outD, out, N * P, 1e-5, 1e-6);
        Hadamard.backward(dinp, dout, scratch, N, P);
        bitskip.kernels.f64.Hadamard.backward(dinpD, toDouble(dout), scratchD, N, P);
        assertClose("Hadamard backward", dinpD, dinp, N * P, 1e-5, 1e-6);
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Hadamard.forward(new float[12], new float[12], 2, 6));
        assertTrue(e.getMessage().contains("P") && e.getMessage().contains("power of two"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Hadamard.padForward(new float[8], new float[10], 2, 5, 4));
        assertTrue(e.getMessage().contains("P") && e.getMessage().contains("C"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Hadamard.padForward(new float[12], new float[10], 2, 5, 6));
        assertTrue(e.getMessage().contains("argument P"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Hadamard.backward(new float[16], new float[16], new float[15], 2, 8));
        assertTrue(e.getMessage().contains("scratch"), e.getMessage());
    }
}
