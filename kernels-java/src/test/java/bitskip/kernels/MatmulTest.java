package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class MatmulTest {
    static final int N = 3, C = 5, OC = 4;

    @Test
    void backwardMatchesFiniteDifferences() {
        double[] inp = gaussian(1, N * C), w = gaussian(2, OC * C), b = gaussian(3, OC), r = gaussian(4, N * OC);
        double[] out = new double[N * OC];
        java.util.function.DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Matmul.forward(out, inp, w, b, N, C, OC);
            return dot(out, r, N * OC);
        };
        double[] dinp = new double[N * C], dw = new double[OC * C], db = new double[OC];
        bitskip.kernels.f64.Matmul.backward(dinp, dw, db, r, inp, w, N, C, OC);
        check("Matmul dinp", inp, dinp, loss);
        check("Matmul dweight", w, dw, loss);
        check("Matmul dbias", b, db, loss);
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[] inp = toFloat(gaussian(5, N * C)), w = toFloat(gaussian(6, OC * C));
        float[] out = new float[N * OC];
        double[] outD = new double[N * OC];
        Matmul.forward(out, inp, w, null, N, C, OC);
        bitskip.kernels.f64.Matmul.forward(outD, toDouble(inp), toDouble(w), null, N, C, OC);
        assertClose("Matmul forward", outD, out, N * OC, 1e-5, 1e-6);
    }

    @Test
    void backwardAccumulates() {
        float[] inp = toFloat(gaussian(7, N * C)), w = toFloat(gaussian(8, OC * C)), dout = toFloat(gaussian(9, N * OC));
        float[] once = new float[OC * C], twice = new float[OC * C];
        Matmul.backward(null, once, null, dout, inp, w, N, C, OC);
        Matmul.backward(null, twice, null, dout, inp, w, N, C, OC);
        Matmul.backward(null, twice, null, dout, inp, w, N, C, OC);
        for (int i = 0; i < once.length; i++) {
            assertEquals(2 * once[i], twice[i], 1e-5f);
        }
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        float[] inp = new float[N * C], w = new float[OC * C], out = new float[N * OC];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Matmul.forward(out, inp, w, null, N, C + 1, OC));
        assertTrue(e.getMessage().contains("inp"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Matmul.forward(out, inp, w, new float[OC - 1], N, C, OC));
        assertTrue(e.getMessage().contains("bias"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Matmul.forward(out, inp, w, null, 0, C, OC));
        assertTrue(e.getMessage().contains("N"), e.getMessage());
    }
}
