package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class LowRankHeadTest {
    static final int V = 7, C = 5, R = 3;

    @Test
    void backwardMatchesFiniteDifferences() {
        double[] w = gaussian(1, V * C), up = gaussian(2, V * R), down = gaussian(3, R * C), r = gaussian(4, V * C);
        double[] out = new double[V * C];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.LowRankHead.forward(out, w, up, down, V, C, R);
            return dot(out, r, V * C);
        };
        loss.getAsDouble();
        double[] dup = new double[V * R], ddown = new double[R * C];
        bitskip.kernels.f64.LowRankHead.backward(dup, ddown, r, up, down, V, C, R);
        check("LowRankHead dup", up, dup, loss);
        check("LowRankHead ddown", down, ddown, loss);
        check("LowRankHead dw (the identity: dout)", w, r, loss);
    }

    @Test
    void logitsAreTheSharedHeadsPlusTheLowRankTerm() {
        // x·(w + up·down)ᵀ = x·wᵀ + (x·downᵀ)·upᵀ, written out independently
        double[] w = gaussian(5, V * C), up = gaussian(6, V * R), down = gaussian(7, R * C), x = gaussian(8, C);
        double[] out = new double[V * C];
        bitskip.kernels.f64.LowRankHead.forward(out, w, up, down, V, C, R);
        double[] t = new double[R];
        for (int k = 0; k < R; k++) {
            for (int c = 0; c < C; c++) {
                t[k] += down[k * C + c] * x[c];
            }
        }
        for (int v = 0; v < V; v++) {
            double got = 0, want = 0;
            for (int c = 0; c < C; c++) {
                got += x[c] * out[v * C + c];
                want += x[c] * w[v * C + c];
            }
            for (int k = 0; k < R; k++) {
                want += up[v * R + k] * t[k];
            }
            assertEquals(want, got, 1e-12);
        }
        float[] zeroUp = new float[V * R], wf = toFloat(w), outf = new float[V * C];
        LowRankHead.forward(outf, wf, zeroUp, toFloat(down), V, C, R);
        assertArrayEquals(wf, outf, "up = 0: the shared head bit for bit");
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[] w = toFloat(gaussian(9, V * C)), up = toFloat(gaussian(10, V * R)), down = toFloat(gaussian(11, R * C));
        float[] dout = toFloat(gaussian(12, V * C)), out = new float[V * C], dup = new float[V * R], ddown = new float[R * C];
        LowRankHead.forward(out, w, up, down, V, C, R);
        LowRankHead.backward(dup, ddown, dout, up, down, V, C, R);
        double[] outD = new double[V * C], dupD = new double[V * R], ddownD = new double[R * C];
        bitskip.kernels.f64.LowRankHead.forward(outD, toDouble(w), toDouble(up), toDouble(down), V, C, R);
        bitskip.kernels.f64.LowRankHead.backward(dupD, ddownD, toDouble(dout), toDouble(up), toDouble(down), V, C, R);
        assertClose("LowRankHead out", outD, out, V * C, 1e-5, 1e-6);
        assertClose("LowRankHead dup", dupD, dup, V * R, 1e-5, 1e-6);
        assertClose("LowRankHead ddown", ddownD, ddown, R * C, 1e-5, 1e-6);
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LowRankHead.forward(
                new float[V * C], new float[V * C], new float[V * R - 1], new float[R * C], V, C, R));
        assertTrue(e.getMessage().contains("argument up "), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LowRankHead.backward(
                new float[V * R], new float[R * C - 1], new float[V * C], new float[V * R], new float[R * C], V, C, R));
        assertTrue(e.getMessage().contains("ddown"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> LowRankHead.forward(
                new float[V * C], new float[V * C], new float[0], new float[0], V, C, 0));
        assertTrue(e.getMessage().contains("r"), e.getMessage());
    }
}
