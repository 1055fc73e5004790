package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;

class EmbeddingTest {
    static final int B = 2, T = 3, N = B * T, C = 4, V = 7, MAXT = 6, POS0 = 2;
    // token 3 appears twice and token 5 three times, so the scatter-add must sum rows
    static final int[] TOKENS = {3, 0, 5, 3, 5, 5};

    @Test
    void backwardMatchesFiniteDifferences() {
        double[] wte = gaussian(1, V * C), wpe = gaussian(2, MAXT * C), r = gaussian(3, N * C);
        double[] out = new double[N * C];
        DoubleSupplier loss = () -> {
            bitskip.kernels.f64.Embedding.forward(out, TOKENS, wte, N, C, V);
            bitskip.kernels.f64.Embedding.positionsForward(out, wpe, B, T, C, POS0, MAXT);
            return dot(out, r, N * C);
        };
        double[] dwte = new double[V * C], dwpe = new double[MAXT * C];
        bitskip.kernels.f64.Embedding.backward(dwte, r, TOKENS, N, C, V);
        bitskip.kernels.f64.Embedding.positionsBackward(dwpe, r, B, T, C, POS0, MAXT);
        check("Embedding dwte", wte, dwte, loss);
        check("Embedding dwpe", wpe, dwpe, loss);
    }

    @Test
    void floatKernelMatchesDoubleTwin() {
        float[] wte = toFloat(gaussian(4, V * C)), wpe = toFloat(gaussian(5, MAXT * C)), dout = toFloat(gaussian(6, N * C));
        float[] out = new float[N * C], dwte = new float[V * C], dwpe = new float[MAXT * C];
        double[] outD = new double[N * C], dwteD = new double[V * C], dwpeD = new double[MAXT * C];
        Embedding.forward(out, TOKENS, wte, N, C, V);
        Embedding.positionsForward(out, wpe, B, T, C, POS0, MAXT);
        Embedding.backward(dwte, dout, TOKENS, N, C, V);
        Embedding.positionsBackward(dwpe, dout, B, T, C, POS0, MAXT);
        bitskip.kernels.f64.Embedding.forward(outD, TOKENS, toDouble(wte), N, C, V);
        bitskip.kernels.f64.Embedding.positionsForward(outD, toDouble(wpe), B, T, C, POS0, MAXT);
        bitskip.kernels.f64.Embedding.backward(dwteD, toDouble(dout), TOKENS, N, C, V);
        bitskip.kernels.f64.Embedding.positionsBackward(dwpeD, toDouble(dout), B, T, C, POS0, MAXT);
        assertClose("Embedding forward", outD, out, N * C, 1e-6, 1e-7);
        assertClose("Embedding dwte", dwteD, dwte, V * C, 1e-6, 1e-7);
        assertClose("Embedding dwpe", dwpeD, dwpe, MAXT * C, 1e-6, 1e-7);
    }

    @Test
    void forwardCopiesRowsAndPositionsAddAtPos0() {
        float[] wte = toFloat(gaussian(7, V * C)), wpe = toFloat(gaussian(8, MAXT * C));
        float[] out = new float[N * C];
        Embedding.forward(out, TOKENS, wte, N, C, V);
        for (int n = 0; n < N; n++) {
            for (int c = 0; c < C; c++) {
                assertEquals(wte[TOKENS[n] * C + c], out[n * C + c], 0.0f);
            }
        }
        Embedding.positionsForward(out, wpe, B, T, C, POS0, MAXT);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                int n = b * T + t;
                for (int c = 0; c < C; c++) {
                    assertEquals(wte[TOKENS[n] * C + c] + wpe[(POS0 + t) * C + c], out[n * C + c], 0.0f);
                }
            }
        }
    }

    @Test
    void forwardAddAddsTheIndexedRows() {
        float[] table = toFloat(gaussian(9, MAXT * C)), out = toFloat(gaussian(10, N * C)), before = out.clone();
        int[] index = new int[N];
        for (int n = 0; n < N; n++) {
            index[n] = POS0 + n % T; // the position rows, as positionsForward reads them
        }
        Embedding.forwardAdd(out, index, table, N, C, MAXT);
        float[] viaPositions = before.clone();
        Embedding.positionsForward(viaPositions, table, B, T, C, POS0, MAXT);
        assertArrayEquals(viaPositions, out);
    }

    @Test
    void scatterAddOfRepeatedTokenSums() {
        float[] dout = toFloat(gaussian(9, N * C));
        float[] dwte = new float[V * C];
        Embedding.backward(dwte, dout, TOKENS, N, C, V);
        for (int c = 0; c < C; c++) {
            assertEquals(dout[0 * C + c] + dout[3 * C + c], dwte[3 * C + c], 1e-6f, "token 3 row");
            assertEquals(dout[2 * C + c] + dout[4 * C + c] + dout[5 * C + c], dwte[5 * C + c], 1e-6f, "token 5 row");
            assertEquals(dout[1 * C + c], dwte[0 * C + c], 0.0f, "token 0 row");
            assertEquals(0.0f, dwte[1 * C + c], 0.0f, "unused token 1 row");
        }
        // backward accumulates
        Embedding.backward(dwte, dout, TOKENS, N, C, V);
        assertEquals(2 * dout[1 * C], dwte[0], 1e-6f);
    }

    @Test
    void positionsBackwardSumsOverBatchAndLeavesOtherRows() {
        float[] dout = toFloat(gaussian(10, N * C));
        float[] dwpe = new float[MAXT * C];
        Embedding.positionsBackward(dwpe, dout, B, T, C, POS0, MAXT);
        for (int p = 0; p < MAXT; p++) {
            for (int c = 0; c < C; c++) {
                int t = p - POS0;
                float expected = t >= 0 && t < T ? dout[t * C + c] + dout[(T + t) * C + c] : 0.0f;
                assertEquals(expected, dwpe[p * C + c], 1e-6f, "row " + p);
            }
        }
    }

    @Test
    void outOfRangeTokenNamesTokensIndexAndValueAndWritesNothing() {
        float[] wte = new float[V * C], out = new float[N * C];
        java.util.Arrays.fill(out, 42.0f);
        int[] bad = {1, 2, 3, 4, V + 5, 0};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Embedding.forward(out, bad, wte, N, C, V));
        assertTrue(e.getMessage().contains("tokens[4]"), e.getMessage());
        assertTrue(e.getMessage().contains(String.valueOf(V + 5)), e.getMessage());
        for (float x : out) {
            assertEquals(42.0f, x, 0.0f, "forward wrote before validating all tokens");
        }
        int[] negative = {1, 2, -3, 4, 5, 0};
        e = assertThrows(IllegalArgumentException.class,
                () -> Embedding.backward(new float[V * C], new float[N * C], negative, N, C, V));
        assertTrue(e.getMessage().contains("tokens[2]") && e.getMessage().contains("-3"), e.getMessage());
    }

    @Test
    void inconsistentDimensionsNameTheArgument() {
        float[] wte = new float[V * C], out = new float[N * C], wpe = new float[MAXT * C];
        assertMessage("wte", () -> Embedding.forward(out, TOKENS, wte, N, C, V + 1));
        assertMessage("out", () -> Embedding.forward(new float[N * C - 1], TOKENS, wte, N, C, V));
        assertMessage("tokens", () -> Embedding.forward(out, new int[N - 1], wte, N, C, V));
        assertMessage("dwte", () -> Embedding.backward(new float[1], out, TOKENS, N, C, V));
        assertMessage("maxT", () -> Embedding.positionsForward(out, wpe, B, T, C, POS0, MAXT - POS0 - 1));
        assertMessage("pos0", () -> Embedding.positionsForward(out, wpe, B, T, C, -1, MAXT));
        assertMessage("wpe", () -> Embedding.positionsForward(out, wpe, B, T, C, POS0, MAXT + 1));
        assertMessage("dwpe", () -> Embedding.positionsBackward(new float[3], out, B, T, C, POS0, MAXT));
        assertMessage("V", () -> Embedding.forward(out, TOKENS, wte, N, C, 0));
    }

    static void assertMessage(String name, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(name), "expected '" + name + "' in: " + e.getMessage());
    }
}
