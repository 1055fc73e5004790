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
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < OC; o++) {
                float acc = bias == null ? 0.0f : bias[o];
                for (int c = 0; c < C; c++) {
                    acc += inp[n * C + c] * weight[o * C + c];
                }
                out[n * OC + o] = acc;
            }
        }
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
            for (int n = 0; n < N; n++) {
                for (int c = 0; c < C; c++) {
                    float acc = 0.0f;
                    for (int o = 0; o < OC; o++) {
                        acc += dout[n * OC + o] * weight[o * C + c];
                    }
                    dinp[n * C + c] += acc;
                }
            }
        }
        if (dweight != null) {
            Check.len(dweight, "dweight", (long) OC * C, "OC*C");
            Check.len(inp, "inp", (long) N * C, "N*C");
            for (int o = 0; o < OC; o++) {
                for (int c = 0; c < C; c++) {
                    float acc = 0.0f;
                    for (int n = 0; n < N; n++) {
                        acc += dout[n * OC + o] * inp[n * C + c];
                    }
                    dweight[o * C + c] += acc;
                }
            }
        }
        if (dbias != null) {
            Check.len(dbias, "dbias", OC, "OC");
            for (int o = 0; o < OC; o++) {
                float acc = 0.0f;
                for (int n = 0; n < N; n++) {
                    acc += dout[n * OC + o];
                }
                dbias[o] += acc;
            }
        }
    }
}
