package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class DropoutTest {
    static final int N = 20;

    @Test
    void backwardMatchesFiniteDifferences() {
        double[] mask = new double[N];
        bitskip.kernels.f64.Dropout.mask(mask, N, 0.3, 7, 0);
        double[] inp = gaussian(1, N), r = gaussian(2, N), out = new double[N];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Dropout.forward(out, inp, mask, N);
            return dot(out, r, N);
        };
        double[] dinp = new double[N];
        bitskip.kernels.f64.Dropout.backward(dinp, r, mask, N);
        check("Dropout dinp", inp, dinp, loss);
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        int n = 1000;
        float p = 0.1f;
        float[] mask = new float[n];
        double[] maskD = new double[n];
        Dropout.mask(mask, n, p, 42, 17);
        bitskip.kernels.f64.Dropout.mask(maskD, n, p, 42, 17);
        for (int i = 0; i < n; i++) {
            assertEquals(mask[i] == 0.0f, maskD[i] == 0.0, "drop pattern differs at " + i);
            assertEquals(maskD[i], mask[i], 1e-6 * maskD[i], "kept value at " + i);
        }
        for (long c = 0; c < 10_000; c++) {
            assertEquals(bitskip.kernels.f64.Dropout.uniform(99, c), (double) Dropout.uniform(99, c), 0.0);
        }
        float[] inp = toFloat(gaussian(3, n)), dout = toFloat(gaussian(4, n));
        float[] out = new float[n], dinp = new float[n];
        double[] outD = new double[n], dinpD = new double[n];
        Dropout.forward(out, inp, mask, n);
        Dropout.backward(dinp, dout, mask, n);
        bitskip.kernels.f64.Dropout.forward(outD, toDouble(inp), maskD, n);
        bitskip.kernels.f64.Dropout.backward(dinpD, toDouble(dout), maskD, n);
        assertClose("Dropout forward", outD, out, n, 1e-6, 0.0);
        assertClose("Dropout backward", dinpD, dinp, n, 1e-6, 0.0);
    }

    /** The generator is splitmix64: the c-th value of SplittableRandom(seed) has the same top 24 bits. */
    @Test
    void uniformIsSplitmix64TopBits() {
        long seed = 123456789L;
        SplittableRandom rng = new SplittableRandom(seed);
        for (long c = 1; c <= 1000; c++) {
            long expected = rng.nextLong() >>> 40;
            float u = Dropout.uniform(seed, c);
            assertEquals(expected / 16777216.0, u, 0.0, "counter " + c);
            assertTrue(u >= 0.0f && u < 1.0f);
        }
    }

    @Test
    void sameSeedAndOffsetGiveSameMaskAndOffsetsCompose() {
        int n = 1000;
        float[] a = new float[n], b = new float[n], tail = new float[n - 300];
        Dropout.mask(a, n, 0.5f, 5, 1000);
        Dropout.mask(b, n, 0.5f, 5, 1000);
        assertArrayEquals(a, b, 0.0f);
        // a mask generated in two pieces equals one generated at once
        Dropout.mask(tail, n - 300, 0.5f, 5, 1300);
        for (int i = 0; i < tail.length; i++) {
            assertEquals(a[300 + i], tail[i], 0.0f);
        }
    }

    @Test
    void differentSeedGivesDifferentMask() {
        int n = 1000;
        float[] a = new float[n], b = new float[n];
        Dropout.mask(a, n, 0.5f, 5, 0);
        Dropout.mask(b, n, 0.5f, 6, 0);
        int differ = 0;
        for (int i = 0; i < n; i++) {
            if (a[i] != b[i]) {
                differ++;
            }
        }
        // independent masks at p = 0.5 differ in about half the places
        assertTrue(differ > 400 && differ < 600, "masks differ in " + differ + " of " + n);
    }

    @Test
    void keepRateAndMeanWithinStatisticalBounds() {
        int n = 100_000;
        float p = 0.1f;
        float[] mask = new float[n];
        Dropout.mask(mask, n, p, 2024, 0);
        int dropped = 0;
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            if (mask[i] == 0.0f) {
                dropped++;
            } else {
                assertEquals(1.0f / (1.0f - p), mask[i], 0.0f);
            }
            sum += mask[i];
        }
        // dropped ~ Binomial(n, p): standard deviation sqrt(n p (1-p)) ≈ 95; allow 5 of them
        double sd = Math.sqrt(n * 0.1 * 0.9);
        assertEquals(n * 0.1, dropped, 5 * sd, "dropped count");
        // mean of the mask ≈ 1; its standard deviation is (1/0.9)·sqrt(0.09/n) ≈ 0.00105
        assertEquals(1.0, sum / n, 5 * 0.00106, "mask mean");
    }

    @Test
    void zeroProbabilityIsIdentity() {
        int n = 500;
        float[] mask = new float[n], inp = toFloat(gaussian(5, n)), out = new float[n];
        Dropout.mask(mask, n, 0.0f, 1, 0);
        Dropout.forward(out, inp, mask, n);
        assertArrayEquals(inp, out, 0.0f);
    }

    @Test
    void probabilityOutsideRangeIsRejectedNamingP() {
        float[] mask = new float[10];
        for (float p : new float[] {1.0f, -0.1f, 1.5f, Float.NaN}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Dropout.mask(mask, 10, p, 1, 0));
            assertTrue(e.getMessage().contains("argument p "), e.getMessage());
        }
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        float[] a = new float[N], b = new float[N];
        EmbeddingTest.assertMessage("mask", () -> Dropout.mask(new float[N - 1], N, 0.1f, 1, 0));
        EmbeddingTest.assertMessage("mask", () -> Dropout.forward(a, b, new float[N - 1], N));
        EmbeddingTest.assertMessage("inp", () -> Dropout.forward(a, new float[1], b, N));
        EmbeddingTest.assertMessage("dinp", () -> Dropout.backward(new float[1], a, b, N));
        EmbeddingTest.assertMessage("n", () -> Dropout.forward(a, a, b, 0));
    }
}
