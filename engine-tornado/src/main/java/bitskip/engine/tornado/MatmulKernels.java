package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Matrix products. One strided GEMM serves the forward and both backward products of every linear layer
 * and of the LM head; every output element is a sum over k in order from the bias, exactly as kernels-java
 * Matmul does, so the results agree bit for bit (with TornadoVM's FMA contraction off). And the column sums
 * of a bias gradient.
 */
final class MatmulKernels {
    private MatmulKernels() {}

    /** Output elements per work-item along each dimension of {@link #gemm}. */
    static final int BLOCK = 4;

    /**
     * acc[i, j] = bias[j] + Σ_k A[i, k]·B[k, j], k in order, and C[i, j] = alpha·acc (beta 0: C is not
     * read) or beta·C[i, j] + alpha·acc (bitskip.engine.Gemm), with element strides: A at offA + i·sam +
     * k·sak, B at offB + k·sbk + j·sbn, C at offC + i·ldc + j. a = (M, N, K, offA, sam, sak, offB, sbk, sbn,
     * offC, ldc, bias, hasBias); f = (alpha, beta). Each work-item computes a BLOCK × BLOCK block of C (launched over
     * ceil(M/BLOCK) × ceil(N/BLOCK)): each A and B element it loads serves BLOCK products, and each of the
     * 16 sums still runs over k in order from the bias, as the reference's. Rows and columns past the edge
     * are read from row/column 0 and never stored.
     */
    static void gemm(FloatArray m, IntArray a, FloatArray f) {
        int M = a.get(0), N = a.get(1), K = a.get(2);
        int offA = a.get(3), sam = a.get(4), sak = a.get(5);
        int offB = a.get(6), sbk = a.get(7), sbn = a.get(8);
        int offC = a.get(9), ldc = a.get(10), bias = a.get(11);
        boolean hasBias = a.get(12) != 0;
        float alpha = f.get(0), beta = f.get(1);
        for (@Parallel int bi = 0; bi < (M + BLOCK - 1) / BLOCK; bi++) {
            for (@Parallel int bj = 0; bj < (N + BLOCK - 1) / BLOCK; bj++) {
                int i0 = bi * BLOCK, j0 = bj * BLOCK;
                int a0 = offA + i0 * sam, a1 = i0 + 1 < M ? a0 + sam : a0;
                int a2 = i0 + 2 < M ? a0 + 2 * sam : a0, a3 = i0 + 3 < M ? a0 + 3 * sam : a0;
                int b0 = offB + j0 * sbn, b1 = j0 + 1 < N ? b0 + sbn : b0;
                int b2 = j0 + 2 < N ? b0 + 2 * sbn : b0, b3 = j0 + 3 < N ? b0 + 3 * sbn : b0;
                float z0 = hasBias ? m.get(bias + j0) : 0.0f;
                float z1 = hasBias && j0 + 1 < N ? m.get(bias + j0 + 1) : 0.0f;
                float z2 = hasBias && j0 + 2 < N ? m.get(bias + j0 + 2) : 0.0f;
                float z3 = hasBias && j0 + 3 < N ? m.get(bias + j0 + 3) : 0.0f;
                float c00 = z0, c01 = z1, c02 = z2, c03 = z3, c10 = z0, c11 = z1, c12 = z2, c13 = z3;
                float c20 = z0, c21 = z1, c22 = z2, c23 = z3, c30 = z0, c31 = z1, c32 = z2, c33 = z3;
                for (int k = 0; k < K; k++) {
                    float x0 = m.get(a0 + k * sak), x1 = m.get(a1 + k * sak);
                    float x2 = m.get(a2 + k * sak), x3 = m.get(a3 + k * sak);
                    float y0 = m.get(b0 + k * sbk), y1 = m.get(b1 + k * sbk);
                    float y2 = m.get(b2 + k * sbk), y3 = m.get(b3 + k * sbk);
                    c00 += x0 * y0;
                    c01 += x0 * y1;
                    c02 += x0 * y2;
                    c03 += x0 * y3;
                    c10 += x1 * y0;
                    c11 += x1 * y1;
                    c12 += x1 * y2;
                    c13 += x1 * y3;
                    c20 += x2 * y0;
                    c21 += x2 * y1;
                    c22 += x2 * y2;
                    c23 += x2 * y3;
                    c30 += x3 * y0;
                    c31 += x3 * y1;
                    c32 += x3 * y2;
                    c33 += x3 * y3;
                }
                store(m, offC + i0 * ldc + j0, c00, c01, c02, c03, N - j0, alpha, beta);
                if (i0 + 1 < M) {
                    store(m, offC + (i0 + 1) * ldc + j0, c10, c11, c12, c13, N - j0, alpha, beta);
                }
                if (i0 + 2 < M) {
                    store(m, offC + (i0 + 2) * ldc + j0, c20, c21, c22, c23, N - j0, alpha, beta);
                }
                if (i0 + 3 < M) {
                    store(m, offC + (i0 + 3) * ldc + j0, c30, c31, c32, c33, N - j0, alpha, beta);
                }
            }
        }
    }

    /** One row of a block: the first min(cols, 4) of v0..v3 into m at `at`, as {@link #scaled}. */
    private static void store(FloatArray m, int at, float v0, float v1, float v2, float v3, int cols, float alpha,
                              float beta) {
        m.set(at, scaled(m, at, v0, alpha, beta));
        if (cols > 1) {
            m.set(at + 1, scaled(m, at + 1, v1, alpha, beta));
        }
        if (cols > 2) {
            m.set(at + 2, scaled(m, at + 2, v2, alpha, beta));
        }
        if (cols > 3) {
            m.set(at + 3, scaled(m, at + 3, v3, alpha, beta));
        }
    }

    /** alpha·acc, or beta·C + alpha·acc when beta is not 0 (then C is read). */
    private static float scaled(FloatArray m, int at, float acc, float alpha, float beta) {
        return beta == 0.0f ? alpha * acc : beta * m.get(at) + alpha * acc;
    }

    /**
     * dst[j] += Σ_i src[i·cols + j], the sum formed from 0 in row order, then added (Matmul.sumRows: a bias
     * gradient, the position table's gradient). a = (dst, src, rows, cols).
     */
    static void sumRows(FloatArray m, IntArray a) {
        int dst = a.get(0), src = a.get(1), rows = a.get(2), cols = a.get(3);
        for (@Parallel int j = 0; j < cols; j++) {
            float acc = 0.0f;
            for (int i = 0; i < rows; i++) {
                acc += m.get(src + i * cols + j);
            }
            m.set(dst + j, m.get(dst + j) + acc);
        }
    }
}
