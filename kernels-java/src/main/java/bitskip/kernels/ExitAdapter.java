package bitskip.kernels;

/**
 * The residual adapter of an early exit ({@code exit_head = adapter}, engine/README.md "Exit heads"), per
 * token: {@code out = h + LN(h) · Wᵀ}, with the adapter's own LayerNorm and a float (C, C) matrix W that
 * starts at zero, so an untrained adapter is the identity and the exit starts as the shared head's.
 *
 * <p>Shapes: h, out (N, C); lnWeight, lnBias (C); w (C, C) in {@code nn.Linear}'s (out, in) layout. Saved
 * by forward for backward: ln (N, C) the LayerNorm output, lnMean and lnRstd (N).
 *
 * <p>Built from LayerNorm and Matmul, so it inherits their conventions and their checks.
 */
public final class ExitAdapter {
    private ExitAdapter() {}

    /** Overwrites out (which must not be h) and the saved arrays ln, lnMean, lnRstd. */
    public static void forward(float[] out, float[] ln, float[] lnMean, float[] lnRstd, float[] h, float[] lnWeight,
                               float[] lnBias, float[] w, int N, int C, float eps) {
        Check.positive("N", N, "C", C);
        Check.arg(out != h, "out", "h", "must not be the input (the residual reads h after out is written)");
        Check.len(out, "out", (long) N * C, "N*C");
        Check.len(w, "w", (long) C * C, "C*C");
        LayerNorm.forward(ln, lnMean, lnRstd, h, lnWeight, lnBias, N, C, eps);
        for (int i = 0; i < N * C; i++) {
            out[i] = h[i];
        }
        // out = 1·out + ln·wᵀ: the product summed over k in order, then added to the residual
        Matmul.gemm(out, 0, C, ln, 0, C, 1, w, 0, 1, C, null, N, C, C, 1.0f, 1.0f);
    }

    /**
     * Accumulates dh (N, C), dlnWeight, dlnBias (C) and dw (C, C) from dout (N, C); dlnWeight/dlnBias and dw
     * may not be null. Scratch, overwritten: dln (N, C), the gradient of the LayerNorm output.
     */
    public static void backward(float[] dh, float[] dlnWeight, float[] dlnBias, float[] dw, float[] dln, float[] dout,
                                float[] h, float[] ln, float[] lnMean, float[] lnRstd, float[] lnWeight, float[] w,
                                int N, int C) {
        Check.positive("N", N, "C", C);
        Check.len(dh, "dh", (long) N * C, "N*C");
        Check.len(dout, "dout", (long) N * C, "N*C");
        Check.len(dln, "dln", (long) N * C, "N*C");
        Check.len(dw, "dw", (long) C * C, "C*C");
        Check.len(w, "w", (long) C * C, "C*C");
        Check.len(ln, "ln", (long) N * C, "N*C");
        // the residual
        for (int i = 0; i < N * C; i++) {
            dh[i] += dout[i];
        }
        for (int i = 0; i < N * C; i++) {
            dln[i] = 0.0f;
        }
        Matmul.backward(dln, dw, null, dout, ln, w, N, C, C);
        LayerNorm.backward(dh, dlnWeight, dlnBias, dln, h, lnWeight, lnMean, lnRstd, N, C);
    }
}
