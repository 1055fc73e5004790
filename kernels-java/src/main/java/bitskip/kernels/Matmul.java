package bitskip.kernels;

/**
 * The linear layer {@code out = inp · weightᵀ + bias}, PyTorch's {@code nn.Linear} layout.
 * inp is (N, C), weight is (OC, C), bias is (OC) or null, out is (N, OC).
 */
public final class Matmul {
    private Matmul() {}

    /** Overwrites out (N, OC). bias may be null. */
    public static void forward(float[] out, float[] inp, float[] weight, float[] bias, int N, int C, int OC) {
        Check.positive("N", N, "C", C, "OC", OC);
        Check.len(out, "out", (long) N * OC, "N*OC");
        Check.len(inp, "inp", (long) N * C, "N*C");
        Check.len(weight, "weight", (long) OC * C, "OC*C");
        if (bias != null) {
            Check.len(bias, "bias", OC, "OC");
        }
        gemm(out, 0, OC, inp, 0, C, 1, weight, 0, 1, C, bias, N, OC, C, 1.0f, 0.0f);
    }

    /**
     * Accumulates: dinp += dout · weight, dweight += doutᵀ · inp, dbias += Σ_n dout.
     * Any of dinp, dweight, dbias may be null when that gradient is not wanted.
     */
    public static void backward(float[] dinp, float[] dweight, float[] dbias, float[] dout, float[] inp,
                                float[] weight, int N, int C, int OC) {
        Check.positive("N", N, "C", C, "OC", OC);
        Check.len(dout, "dout", (long) N * OC, "N*OC");
        if (dinp != null) {
            Check.len(dinp, "dinp", (long) N * C, "N*C");
            Check.len(weight, "weight", (long) OC * C, "OC*C");
            gemm(dinp, 0, C, dout, 0, OC, 1, weight, 0, C, 1, null, N, C, OC, 1.0f, 1.0f);
        }
        if (dweight != null) {
            Check.len(dweight, "dweight", (long) OC * C, "OC*C");
            Check.len(inp, "inp", (long) N * C, "N*C");
            gemm(dweight, 0, C, dout, 0, 1, OC, inp, 0, C, 1, null, OC, C, N, 1.0f, 1.0f);
        }
        if (dbias != null) {
            Check.len(dbias, "dbias", OC, "OC");
            sumRows(dbias, 0, dout, N, OC);
        }
    }

    /**
     * The general matrix product every linear layer and attention block is made of:
     * <pre>
     *   acc    = (bias == null ? 0 : bias[j]) + Σ_k A(i, k)·B(k, j)      k in increasing order
     *   C(i,j) = beta == 0 ? alpha·acc : beta·C(i, j) + alpha·acc        (C not read when beta is 0)
     * </pre>
     * for i &lt; M, j &lt; N, with element (i, k) of A at {@code aOff + i·aRow + k·aCol} (so a transposed or
     * strided operand is only a choice of strides), likewise B, and C(i, j) at {@code cOff + i·ldc + j}.
     * With alpha 1 and beta 0 or 1 this is exactly {@link #forward}'s and {@link #backward}'s order.
     */
    public static void gemm(float[] c, int cOff, int ldc, float[] a, int aOff, int aRow, int aCol,
                            float[] b, int bOff, int bRow, int bCol, float[] bias, int M, int N, int K,
                            float alpha, float beta) {
        Check.positive("M", M, "N", N, "K", K);
        Check.len(a, "A", aOff + (long) (M - 1) * aRow + (long) (K - 1) * aCol + 1, "aOff + (M-1)*aRow + (K-1)*aCol + 1");
        Check.len(b, "B", bOff + (long) (K - 1) * bRow + (long) (N - 1) * bCol + 1, "bOff + (K-1)*bRow + (N-1)*bCol + 1");
        Check.len(c, "C", cOff + (long) (M - 1) * ldc + N, "cOff + (M-1)*ldc + N");
        if (bias != null) {
            Check.len(bias, "bias", N, "N");
        }
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                float acc = bias == null ? 0.0f : bias[j];
                for (int k = 0; k < K; k++) {
                    acc += a[aOff + i * aRow + k * aCol] * b[bOff + k * bRow + j * bCol];
                }
                int o = cOff + i * ldc + j;
                c[o] = beta == 0.0f ? alpha * acc : beta * c[o] + alpha * acc;
            }
        }
    }

    /**
     * Accumulates dst[dstOff + j] += Σ_i src[i·cols + j] over rows i &lt; rows, for j &lt; cols: each column's
     * sum formed from 0 in row order, then added (a bias gradient; the position table's gradient).
     */
    public static void sumRows(float[] dst, int dstOff, float[] src, int rows, int cols) {
        Check.positive("rows", rows, "cols", cols);
        Check.len(dst, "dst", (long) dstOff + cols, "dstOff + cols");
        Check.len(src, "src", (long) rows * cols, "rows*cols");
        for (int j = 0; j < cols; j++) {
            float acc = 0.0f;
            for (int i = 0; i < rows; i++) {
                acc += src[i * cols + j];
            }
            dst[dstOff + j] += acc;
        }
    }
}
