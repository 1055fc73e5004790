package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Matrix products. One strided GEMM serves the forward and both backward products of every linear layer
 * and the LM head: each output element is one work-item summing over k in order from the bias, exactly
 * as kernels-java Matmul does, so the results agree bit for bit (with TornadoVM's FMA contraction off).
 */
final class MatmulKernels {
    private MatmulKernels() {}

    /**
     * C[i, j] = [C[i, j] +] (bias[j] + Σ_k A[i, k]·B[k, j]) with element strides: A at offA + i·sam + k·sak,
     * B at offB + k·sbk + j·sbn, C at offC + i·ldc + j. a = (M, N, K, offA, sam, sak, offB, sbk, sbn, offC,
     * ldc, bias, hasBias, accumulate).
     */
    static void gemm(FloatArray m, IntArray a) {
        int K = a.get(2);
        int offA = a.get(3), sam = a.get(4), sak = a.get(5);
        int offB = a.get(6), sbk = a.get(7), sbn = a.get(8);
        int offC = a.get(9), ldc = a.get(10), bias = a.get(11);
        boolean hasBias = a.get(12) != 0, accumulate = a.get(13) != 0;
        for (@Parallel int i = 0; i < a.get(0); i++) {
            for (@Parallel int j = 0; j < a.get(1); j++) {
                float acc = hasBias ? m.get(bias + j) : 0.0f;
                int ai = offA + i * sam, bj = offB + j * sbn;
                for (int k = 0; k < K; k++) {
                    acc += m.get(ai + k * sak) * m.get(bj + k * sbk);
                }
                int at = offC + i * ldc + j;
                m.set(at, accumulate ? m.get(at) + acc : acc);
            }
        }
    }

    /** dbias[o] += Σ_n dout[n, o] (float, n in order). a = (dbias, dout, N, OC). */
    static void columnSumAccumulate(FloatArray m, IntArray a) {
        int dbias = a.get(0), dout = a.get(1), N = a.get(2), OC = a.get(3);
        for (@Parallel int o = 0; o < OC; o++) {
            float acc = 0.0f;
            for (int n = 0; n < N; n++) {
                acc += m.get(dout + n * OC + o);
            }
            m.set(dbias + o, m.get(dbias + o) + acc);
        }
    }
}
