package bitskip.engine;

/**
 * The arguments of {@link Backend#gemm}:
 * <pre>
 *   acc[i, j] = bias[j] (0 without a bias) + Σ_k op(a)[i, k] · op(b)[k, j]     k = 0 .. K-1, in this order
 *   c[i, j]   = alpha·acc[i, j]                  when beta is 0 (c is not read: it may hold NaN)
 *             = beta·c[i, j] + alpha·acc[i, j]    otherwise
 * </pre>
 * for i &lt; M, j &lt; N; a bias comes only with alpha 1 and beta 0 (a linear layer's forward).
 * The reference ({@code JavaBackend}) computes exactly that, in float, which is
 * {@code Matmul.forward}'s order (alpha 1 is then no operation and beta 1 a plain {@code +=}); other
 * backends may sum in another order and agree within their stated tolerance.
 */
public record Gemm(int M, int N, int K, float alpha, Mat a, Mat b, float beta, Mat c, Tensor bias) {
    public Gemm {
        if (M <= 0 || N <= 0 || K <= 0) {
            throw new IllegalArgumentException("gemm dimensions must be positive: M " + M + ", N " + N + ", K " + K);
        }
        if (c.transposed()) {
            throw new IllegalArgumentException("gemm output " + c.tensor().name() + " cannot be transposed");
        }
        Tensors.need(a.tensor(), a.extent(M, K), "gemm A (" + M + "x" + K + ")");
        Tensors.need(b.tensor(), b.extent(K, N), "gemm B (" + K + "x" + N + ")");
        Tensors.need(c.tensor(), c.extent(M, N), "gemm C (" + M + "x" + N + ")");
        if (bias != null) {
            Tensors.need(bias, N, "gemm bias N");
            if (alpha != 1.0f || beta != 0.0f) {
                throw new IllegalArgumentException("gemm with a bias (" + bias.name() + ") needs alpha 1 and beta 0, got "
                        + alpha + " and " + beta);
            }
        }
    }

    /** out (N, OC) = inp (N, C) · weight (OC, C)ᵀ + bias: nn.Linear's forward; bias may be null. */
    public static Gemm linear(Tensor out, Tensor inp, Tensor weight, Tensor bias, int N, int C, int OC) {
        return new Gemm(N, OC, C, 1.0f, Mat.of(inp, C), Mat.transposeOf(weight, C), 0.0f, Mat.of(out, OC), bias);
    }

    /** dinp (N, C) += dout (N, OC) · weight (OC, C): the input gradient of {@link #linear}. */
    public static Gemm linearInputGrad(Tensor dinp, Tensor dout, Tensor weight, int N, int C, int OC) {
        return new Gemm(N, C, OC, 1.0f, Mat.of(dout, OC), Mat.of(weight, C), 1.0f, Mat.of(dinp, C), null);
    }

    /** dweight (OC, C) += dout (N, OC)ᵀ · inp (N, C): the weight gradient of {@link #linear}. */
    public static Gemm linearWeightGrad(Tensor dweight, Tensor dout, Tensor inp, int N, int C, int OC) {
        return new Gemm(OC, C, N, 1.0f, Mat.transposeOf(dout, OC), Mat.of(inp, C), 1.0f, Mat.of(dweight, C), null);
    }
}
