package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

/** Matmul.gemm (the strided general product) and Matmul.sumRows, which Matmul's forward and backward use. */
class GemmTest {

    /** gemm with every stride, offset, alpha, beta and bias against a plain double loop. */
    @Test
    void stridedOperandsMatchADoubleLoop() {
        int M = 3, N = 4, K = 5, aOff = 2, bOff = 1, cOff = 3, ldc = 6;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                int aRow = ta ? 1 : K + 1, aCol = ta ? M + 2 : 1;   // a padded leading dimension, or transposed
                int bRow = tb ? 1 : N, bCol = tb ? K : 1;
                float[] a = toFloat(gaussian(1, aOff + (M - 1) * aRow + (K - 1) * aCol + 1));
                float[] b = toFloat(gaussian(2, bOff + (K - 1) * bRow + (N - 1) * bCol + 1));
                float[] bias = toFloat(gaussian(3, N));
                float[] c0 = toFloat(gaussian(4, cOff + (M - 1) * ldc + N));
                float[] c = c0.clone();
                Matmul.gemm(c, cOff, ldc, a, aOff, aRow, aCol, b, bOff, bRow, bCol, bias, M, N, K, 0.5f, 2.0f);
                for (int i = 0; i < M; i++) {
                    for (int j = 0; j < N; j++) {
                        double acc = bias[j];
                        for (int k = 0; k < K; k++) {
                            acc += (double) a[aOff + i * aRow + k * aCol] * b[bOff + k * bRow + j * bCol];
                        }
                        double want = 2.0 * c0[cOff + i * ldc + j] + 0.5 * acc;
                        assertEquals(want, c[cOff + i * ldc + j], 1e-5 * (1 + Math.abs(want)), "ta=" + ta + " tb=" + tb);
                    }
                }
                // elements of C outside the block are not touched
                for (int i = 0; i < cOff; i++) {
                    assertEquals(c0[i], c[i]);
                }
            }
        }
    }

    /** beta 0 never reads C: a NaN there does not leak into the result. */
    @Test
    void betaZeroIgnoresC() {
        float[] a = {1, 2}, b = {3, 4}, c = {Float.NaN};
        Matmul.gemm(c, 0, 1, a, 0, 2, 1, b, 0, 1, 1, null, 1, 1, 2, 1.0f, 0.0f);
        assertEquals(11.0f, c[0]);
    }

    @Test
    void sumRowsAddsEachColumnsSumIntoTheSlice() {
        float[] src = {1, 2, 3, 4, 5, 6}, dst = {10, 20, 30, 40};
        Matmul.sumRows(dst, 1, src, 2, 3);
        assertArrayEquals(new float[] {10, 25, 37, 49}, dst);
    }

    @Test
    void badStridesNameTheOperand() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Matmul.gemm(new float[4], 0, 2, new float[3], 0, 2, 1, new float[4], 0, 2, 1, null, 2, 2, 2, 1, 0));
        assertTrue(e.getMessage().contains("A"), e.getMessage());
    }
}
