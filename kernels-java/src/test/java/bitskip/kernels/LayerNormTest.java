package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class LayerNormTest {
    static final int N = 3, C = 6;
    static final float EPS = 1e-5f;

    @Test
    void backwardMatchesFiniteDifferences() {
        double[] inp = gaussian(1, N * C), w = gaussian(2, C), b = gaussian(3, C), r = gaussian(4, N * C);
        double[] out = new double[N * C], mean = new double[N], rstd = new double[N];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.LayerNorm.forward(out, mean, rstd, inp, w, b, N, C, EPS);
            return dot(out, r, N * C);
        };
        loss.getAsDouble(); // fills mean and rstd for the backward pass
        double[] dinp = new double[N * C], dw = new double[C], db = new double[C];
        bitskip.kernels.f64.LayerNorm.backward(dinp, dw, db, r, inp, w, mean, rstd, N, C);
        check("LayerNorm dinp", inp, dinp, loss);
        check("LayerNorm dweight", w, dw, loss);
        check("LayerNorm dbias", b, db, loss);
    }

    @Test
    void parameterFreeBackwardMatchesFiniteDifferences() {
        double[] inp = gaussian(5, N * C), r = gaussian(6, N * C);
        double[] out = new double[N * C], mean = new double[N], rstd = new double[N];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.LayerNorm.forward(out, mean, rstd, inp, null, null, N, C, EPS);
            return dot(out, r, N * C);
        };
        loss.getAsDouble();
        double[] dinp = new double[N * C];
        bitskip.kernels.f64.LayerNorm.backward(dinp, null, null, r, inp, null, mean, rstd, N, C);
        check("LayerNorm (no affine) dinp", inp, dinp, loss);
    }

    @Test
    void normalizedRowsHaveMeanZeroAndVarianceOne() {
        // shifted and scaled input, so a missing mean subtraction or variance division would show
        double[] inp = gaussian(7, N * C);
        for (int i = 0; i < inp.length; i++) {
            inp[i] = 3.0 + 5.0 * inp[i];
        }
        double[] out = new double[N * C], mean = new double[N], rstd = new double[N];
        bitskip.kernels.f64.LayerNorm.forward(out, mean, rstd, inp, null, null, N, C, EPS);
        for (int n = 0; n < N; n++) {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++) {
                m += out[n * C + c];
            }
            m /= C;
            for (int c = 0; c < C; c++) {
                v += (out[n * C + c] - m) * (out[n * C + c] - m);
            }
            v /= C; // biased variance, as torch.nn.LayerNorm
            assertEquals(0.0, m, 1e-12, "row " + n + " mean");
            // eps 1e-5 against a variance of about 25 leaves the normalized variance 1 - 4e-7
            assertEquals(1.0, v, 1e-6, "row " + n + " variance");
        }
        // the affine step is applied after normalization: out = norm * weight + bias
        double[] w = gaussian(8, C), b = gaussian(9, C), outA = new double[N * C];
        bitskip.kernels.f64.LayerNorm.forward(outA, mean, rstd, inp, w, b, N, C, EPS);
        for (int i = 0; i < N * C; i++) {
            assertEquals(out[i] * w[i % C] + b[i % C], outA[i], 1e-12);
        }
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[] inp = toFloat(gaussian(10, N * C)), w = toFloat(gaussian(11, C)), b = toFloat(gaussian(12, C));
        float[] dout = toFloat(gaussian(13, N * C));
        float[] out = new float[N * C], mean = new float[N], rstd = new float[N];
        float[] dinp = new float[N * C], dw = new float[C], db = new float[C];
        double[] outD = new double[N * C], meanD = new double[N], rstdD = new double[N];
        double[] dinpD = new double[N * C], dwD = new double[C], dbD = new double[C];
        LayerNorm.forward(out, mean, rstd, inp, w, b, N, C, EPS);
        LayerNorm.backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
        bitskip.kernels.f64.LayerNorm.forward(outD, meanD, rstdD, toDouble(inp), toDouble(w), toDouble(b), N, C, EPS);
        bitskip.kernels.f64.LayerNorm.backward(dinpD, dwD, dbD, toDouble(dout), toDouble(inp), toDouble(w), meanD,
                rstdD, N, C);
        assertClose("LayerNorm forward", outD, out, N * C, 1e-5, 1e-5);
        assertClose("LayerNorm mean", meanD, mean, N, 1e-5, 1e-6);
        assertClose("LayerNorm rstd", rstdD, rstd, N, 1e-5, 1e-6);
        assertClose("LayerNorm dinp", dinpD, dinp, N * C, 1e-4, 1e-5);
        assertClose("LayerNorm dweight", dwD, dw, C, 1e-5, 1e-5);
        assertClose("LayerNorm dbias", dbD, db, C, 1e-5, 1e-6);
    }

    @Test
    void backwardAccumulates() {
        float[] inp = toFloat(gaussian(14, N * C)), w = toFloat(gaussian(15, C)), b = toFloat(gaussian(16, C));
        float[] dout = toFloat(gaussian(17, N * C)), out = new float[N * C], mean = new float[N], rstd = new float[N];
        LayerNorm.forward(out, mean, rstd, inp, w, b, N, C, EPS);
        float[] once = new float[N * C], twice = new float[N * C], dw1 = new float[C], dw2 = new float[C];
        LayerNorm.backward(once, dw1, new float[C], dout, inp, w, mean, rstd, N, C);
        LayerNorm.backward(twice, dw2, new float[C], dout, inp, w, mean, rstd, N, C);
        LayerNorm.backward(twice, dw2, new float[C], dout, inp, w, mean, rstd, N, C);
        for (int i = 0; i < N * C; i++) {
            assertEquals(2 * once[i], twice[i], 1e-5f);
        }
        for (int c = 0; c < C; c++) {
            assertEquals(2 * dw1[c], dw2[c], 1e-5f);
        }
    }

    @Test
    void inconsistentArgumentsNameTheArgument() {
        float[] inp = new float[N * C], out = new float[N * C], mean = new float[N], rstd = new float[N];
        float[] w = new float[C], b = new float[C];
        EmbeddingTest.assertMessage("weight/bias", () -> LayerNorm.forward(out, mean, rstd, inp, w, null, N, C, EPS));
        EmbeddingTest.assertMessage("weight/bias", () -> LayerNorm.forward(out, mean, rstd, inp, null, b, N, C, EPS));
        EmbeddingTest.assertMessage("argument weight ",
                () -> LayerNorm.forward(out, mean, rstd, inp, new float[C - 1], b, N, C, EPS));
        EmbeddingTest.assertMessage("argument bias ",
                () -> LayerNorm.forward(out, mean, rstd, inp, w, new float[C - 1], N, C, EPS));
        EmbeddingTest.assertMessage("argument inp ",
                () -> LayerNorm.forward(out, mean, rstd, new float[N * C - 1], w, b, N, C, EPS));
        EmbeddingTest.assertMessage("argument rstd ",
                () -> LayerNorm.forward(out, mean, new float[N - 1], inp, w, b, N, C, EPS));
        EmbeddingTest.assertMessage("eps", () -> LayerNorm.forward(out, mean, rstd, inp, w, b, N, C, 0.0f));
        EmbeddingTest.assertMessage("dweight/dbias",
                () -> LayerNorm.backward(inp, w, b, out, inp, null, mean, rstd, N, C));
        EmbeddingTest.assertMessage("argument dbias ",
                () -> LayerNorm.backward(inp, w, null, out, inp, w, mean, rstd, N, C));
        EmbeddingTest.assertMessage("argument dout ",
                () -> LayerNorm.backward(inp, w, b, new float[1], inp, w, mean, rstd, N, C));
        EmbeddingTest.assertMessage("N", () -> LayerNorm.forward(out, mean, rstd, inp, w, b, 0, C, EPS));
    }
}
