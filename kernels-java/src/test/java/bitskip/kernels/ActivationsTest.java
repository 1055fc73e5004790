package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class ActivationsTest {
    static final int N = 24;

    /** Gaussian points pushed at least 0.1 away from 0, so finite differences never straddle the kink. */
    static double[] awayFromZero(long seed, int n) {
        double[] x = gaussian(seed, n);
        for (int i = 0; i < n; i++) {
            x[i] = x[i] >= 0 ? x[i] + 0.1 : x[i] - 0.1;
        }
        return x;
    }

    @Test
    void relu2BackwardMatchesFiniteDifferences() {
        double[] inp = awayFromZero(1, N), r = gaussian(2, N), out = new double[N];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Activations.relu2Forward(out, inp, N);
            return dot(out, r, N);
        };
        double[] dinp = new double[N];
        bitskip.kernels.f64.Activations.relu2Backward(dinp, r, inp, N);
        check("relu2 dinp", inp, dinp, loss);
    }

    @Test
    void reluBackwardMatchesFiniteDifferences() {
        double[] inp = awayFromZero(3, N), r = gaussian(4, N), out = new double[N];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Activations.reluForward(out, inp, N);
            return dot(out, r, N);
        };
        loss.getAsDouble();
        double[] dinp = new double[N];
        bitskip.kernels.f64.Activations.reluBackward(dinp, r, out.clone(), N);
        check("relu dinp", inp, dinp, loss);
    }

    @Test
    void sigmoidBackwardMatchesFiniteDifferences() {
        double[] inp = gaussian(5, N), r = gaussian(6, N), out = new double[N];
        for (int i = 0; i < N; i++) {
            inp[i] *= 3.0; // cover the saturating tails as well as the middle
        }
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Activations.sigmoidForward(out, inp, N);
            return dot(out, r, N);
        };
        loss.getAsDouble();
        double[] dinp = new double[N];
        bitskip.kernels.f64.Activations.sigmoidBackward(dinp, r, out.clone(), N);
        check("sigmoid dinp", inp, dinp, loss);
    }

    @Test
    void addBackwardIsIdentityToBothInputs() {
        double[] a = gaussian(7, N), b = gaussian(8, N), r = gaussian(9, N), out = new double[N];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Activations.add(out, a, b, N);
            return dot(out, r, N);
        };
        check("add da", a, r, loss);
        check("add db", b, r, loss);
    }

    @Test
    void forwardValues() {
        float[] inp = {-2.0f, -0.5f, 0.5f, 3.0f}, out = new float[4];
        Activations.relu2Forward(out, inp, 4);
        assertArrayEquals(new float[] {0.0f, 0.0f, 0.25f, 9.0f}, out, 0.0f);
        Activations.reluForward(out, inp, 4);
        assertArrayEquals(new float[] {0.0f, 0.0f, 0.5f, 3.0f}, out, 0.0f);
        Activations.sigmoidForward(out, new float[] {0.0f, 100.0f, -100.0f, 1.0f}, 4);
        assertArrayEquals(new float[] {0.5f, 1.0f, 0.0f, (float) (1 / (1 + Math.exp(-1)))}, out, 1e-7f);
    }

    @Test
    void floatKernelsMatchDoubleTwins() {
        float[] inp = toFloat(awayFromZero(10, N)), b = toFloat(gaussian(11, N)), dout = toFloat(gaussian(12, N));
        double[] inpD = toDouble(inp), bD = toDouble(b), doutD = toDouble(dout);
        float[] out = new float[N], dinp = new float[N];
        double[] outD = new double[N], dinpD = new double[N];

        Activations.relu2Forward(out, inp, N);
        bitskip.kernels.f64.Activations.relu2Forward(outD, inpD, N);
        assertClose("relu2 forward", outD, out, N, 1e-6, 0.0);
        Activations.relu2Backward(dinp, dout, inp, N);
        bitskip.kernels.f64.Activations.relu2Backward(dinpD, doutD, inpD, N);
        assertClose("relu2 backward", dinpD, dinp, N, 1e-6, 0.0);

        Activations.reluForward(out, inp, N);
        bitskip.kernels.f64.Activations.reluForward(outD, inpD, N);
        assertClose("relu forward", outD, out, N, 0.0, 0.0);
        java.util.Arrays.fill(dinp, 0.0f);
        java.util.Arrays.fill(dinpD, 0.0);
        Activations.reluBackward(dinp, dout, out, N);
        bitskip.kernels.f64.Activations.reluBackward(dinpD, doutD, outD, N);
        assertClose("relu backward", dinpD, dinp, N, 0.0, 0.0);

        Activations.sigmoidForward(out, inp, N);
        bitskip.kernels.f64.Activations.sigmoidForward(outD, inpD, N);
        assertClose("sigmoid forward", outD, out, N, 1e-6, 1e-7);
        java.util.Arrays.fill(dinp, 0.0f);
        java.util.Arrays.fill(dinpD, 0.0);
        Activations.sigmoidBackward(dinp, dout, out, N);
        bitskip.kernels.f64.Activations.sigmoidBackward(dinpD, doutD, outD, N);
        assertClose("sigmoid backward", dinpD, dinp, N, 1e-5, 1e-7);

        Activations.add(out, inp, b, N);
        bitskip.kernels.f64.Activations.add(outD, inpD, bD, N);
        assertClose("add", outD, out, N, 1e-7, 0.0);
    }

    @Test
    void backwardAccumulates() {
        float[] inp = toFloat(awayFromZero(13, N)), dout = toFloat(gaussian(14, N));
        float[] once = new float[N], twice = new float[N];
        Activations.relu2Backward(once, dout, inp, N);
        Activations.relu2Backward(twice, dout, inp, N);
        Activations.relu2Backward(twice, dout, inp, N);
        for (int i = 0; i < N; i++) {
            assertEquals(2 * once[i], twice[i], 1e-5f);
        }
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        float[] a = new float[N], b = new float[N];
        EmbeddingTest.assertMessage("argument out ", () -> Activations.relu2Forward(new float[N - 1], a, N));
        EmbeddingTest.assertMessage("argument inp ", () -> Activations.relu2Forward(a, new float[1], N));
        EmbeddingTest.assertMessage("argument inp ", () -> Activations.relu2Backward(a, b, new float[1], N));
        EmbeddingTest.assertMessage("argument out ", () -> Activations.reluBackward(a, b, null, N));
        EmbeddingTest.assertMessage("argument dout ", () -> Activations.sigmoidBackward(a, new float[2], b, N));
        EmbeddingTest.assertMessage("argument b ", () -> Activations.add(a, b, new float[N - 1], N));
        EmbeddingTest.assertMessage("n", () -> Activations.sigmoidForward(a, b, 0));
    }
}
