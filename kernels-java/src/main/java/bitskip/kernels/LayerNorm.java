package bitskip.kernels;

/**
 * LayerNorm over the last dimension: {@code out = (inp - mean) * rstd * weight + bias}, biased variance,
 * as {@code torch.nn.LayerNorm}. inp and out are (N, C); mean and rstd (N) are saved for the backward pass.
 * weight and bias may both be null: a parameter-free LayerNorm (gamma 1, beta 0), which the authors' code
 * puts before q/k/v in the no-Hadamard variants.
 */
public final class LayerNorm {
    private LayerNorm() {}

    public static void forward(float[] out, float[] mean, float[] rstd, float[] inp, float[] weight,
                               float[] bias, int N, int C, float eps) {
        Check.positive("N", N, "C", C);
        Check.len(out, "out", (long) N * C, "N*C");
        Check.len(mean, "mean", N, "N");
        Check.len(rstd, "rstd", N, "N");
        Check.len(inp, "inp", (long) N * C, "N*C");
        Check.arg((weight == null) == (bias == null), "weight/bias", weight == null ? "null/non-null" : "non-null/null",
                "both present or both null");
        if (weight != null) {
            Check.len(weight, "weight", C, "C");
            Check.len(bias, "bias", C, "C");
        }
        Check.arg(eps > 0.0f, "eps", eps, "must be positive");
        for (int n = 0; n < N; n++) {
            int row = n * C;
            float m = 0.0f;
            for (int c = 0; c < C; c++) {
                m += inp[row + c];
            }
            m = m / C;
            float var = 0.0f;
            for (int c = 0; c < C; c++) {
                float d = inp[row + c] - m;
                var += d * d;
            }
            var = var / C;
            float s = (float) (1.0 / Math.sqrt(var + eps));
            for (int c = 0; c < C; c++) {
                float norm = (inp[row + c] - m) * s;
                out[row + c] = weight == null ? norm : norm * weight[c] + bias[c];
            }
            mean[n] = m;
            rstd[n] = s;
        }
    }

    /**
     * Accumulates dinp, dweight and dbias. With a parameter-free LayerNorm (weight null) dweight and dbias
     * must be null too.
     */
    public static void backward(float[] dinp, float[] dweight, float[] dbias, float[] dout, float[] inp,
                                float[] weight, float[] mean, float[] rstd, int N, int C) {
        Check.positive("N", N, "C", C);
        Check.len(dinp, "dinp", (long) N * C, "N*C");
        Check.len(dout, "dout", (long) N * C, "N*C");
        Check.len(inp, "inp", (long) N * C, "N*C");
        Check.len(mean, "mean", N, "N");
        Check.len(rstd, "rstd", N, "N");
        if (weight != null) {
            Check.len(weight, "weight", C, "C");
            Check.len(dweight, "dweight", C, "C");
            Check.len(dbias, "dbias", C, "C");
        } else {
            Check.arg(dweight == null && dbias == null, "dweight/dbias", "non-null",
                    "must be null for a parameter-free LayerNorm (weight null)");
        }
        for (int n = 0; n < N; n++) {
            int row = n * C;
            float m = mean[n];
            float s = rstd[n];
            // dnorm = dout * weight; dinp = s * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
            float dnormMean = 0.0f;
            float dnormNormMean = 0.0f;
            for (int c = 0; c < C; c++) {
                float norm = (inp[row + c] - m) * s;
                float dnorm = weight == null ? dout[row + c] : dout[row + c] * weight[c];
                dnormMean += dnorm;
                dnormNormMean += dnorm * norm;
            }
            dnormMean = dnormMean / C;
            dnormNormMean = dnormNormMean / C;
            for (int c = 0; c < C; c++) {
                float norm = (inp[row + c] - m) * s;
                float dnorm = weight == null ? dout[row + c] : dout[row + c] * weight[c];
                if (weight != null) {
                    dweight[c] += dout[row + c] * norm;
                    dbias[c] += dout[row + c];
                }
                dinp[row + c] += s * (dnorm - dnormMean - norm * dnormNormMean);
            }
        }
    }
}
