package bitskip.kernels;

/**
 * The head of an early exit under {@code exit_head = lowrank} (docs/exit-heads.md): the shared head's
 * weights plus a rank-r correction, {@code out = w + up · down}, so the exit's logits are
 * {@code x · outᵀ = x · wᵀ + (x · downᵀ) · upᵀ}. w and out are (V, C), up (V, r) (zero at init), down (r, C).
 * The model materializes out once per pass and runs the chunked head loss on it; backward turns the
 * gradient of out into the factors' gradients (and the caller adds it to w's unless the exit is
 * grad-stopped).
 *
 * <p>Built from Matmul.gemm, so it inherits its conventions and its checks.
 */
public final class LowRankHead {
    private LowRankHead() {}

    /** Overwrites out (V, C) with w + up·down: the product summed over the rank in order, then added to w. */
    public static void forward(float[] out, float[] w, float[] up, float[] down, int V, int C, int r) {
        Check.positive("V", V, "C", C, "r", r);
        Check.len(out, "out", (long) V * C, "V*C");
        Check.len(w, "w", (long) V * C, "V*C");
        Check.len(up, "up", (long) V * r, "V*r");
        Check.len(down, "down", (long) r * C, "r*C");
        for (int i = 0; i < V * C; i++) {
            out[i] = w[i];
        }
        Matmul.gemm(out, 0, C, up, 0, r, 1, down, 0, C, 1, null, V, C, r, 1.0f, 1.0f);
    }

    /** Accumulates dup (V, r) += dout·downᵀ and ddown (r, C) += upᵀ·dout from dout (V, C), the gradient of out. */
    public static void backward(float[] dup, float[] ddown, float[] dout, float[] up, float[] down, int V, int C, int r) {
        Check.positive("V", V, "C", C, "r", r);
        Check.len(dup, "dup", (long) V * r, "V*r");
        Check.len(ddown, "ddown", (long) r * C, "r*C");
        Check.len(dout, "dout", (long) V * C, "V*C");
        Check.len(up, "up", (long) V * r, "V*r");
        Check.len(down, "down", (long) r * C, "r*C");
        Matmul.gemm(dup, 0, r, dout, 0, C, 1, down, 0, 1, C, null, V, r, C, 1.0f, 1.0f);
        Matmul.gemm(ddown, 0, C, up, 0, 1, r, dout, 0, C, 1, null, r, C, V, 1.0f, 1.0f);
    }
}
