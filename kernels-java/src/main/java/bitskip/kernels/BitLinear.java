package bitskip.kernels;

/**
 * BitLinear (MODEL.md section 2, paper Eq. 1–2): {@code out = act(x̂ · Ŵᵀ)} with no bias, where x̂ is the
 * per-token absmax quantization of inp to {@code actBits} bits and Ŵ the ternary quantization of weight.
 * A composite of {@link Quantize}, {@link Matmul} and {@link Activations#relu2Forward}.
 *
 * <p>Switches: {@code actBits} 0 means no activation quantization (x̂ = inp), otherwise in [2, 8];
 * {@code ternary} false means full-precision weights (Ŵ = weight); {@code relu2} applies relu2 to the
 * output (the authors' code applies it on every quantized projection).
 *
 * <p>Backward uses the straight-through estimator: relu2's backward, Matmul's backward with the x̂ and Ŵ the
 * forward pass used, then the quantizers as the identity, so the gradients with respect to x̂ and Ŵ are the
 * gradients with respect to inp and weight.
 *
 * <p>Shapes: inp (N, C), weight (OC, C), out (N, OC).
 */
public final class BitLinear {
    private BitLinear() {}

    /**
     * @param out      (N, OC) written with act(x̂ · Ŵᵀ)
     * @param preact   (N, OC) written with x̂ · Ŵᵀ, saved for relu2's backward; may be null when relu2 is false
     * @param xHat     (N, C) written with x̂, saved for the weight gradient; may be null when actBits is 0
     *                 (then x̂ is inp itself)
     * @param actScale (N) written with each token's absmax scale s (backward does not need it); may be null
     *                 when actBits is 0
     * @param wHat     (OC, C) written with Ŵ = alpha·codes, saved for the input gradient; may be null when
     *                 ternary is false (then Ŵ is weight itself)
     * @param inp      (N, C) the input x
     * @param weight   (OC, C) the full-precision weight W
     * @param actBits  0 (no activation quantization) or in [2, 8]
     * @param ternary  quantize the weights to {-alpha, 0, +alpha}
     * @param relu2    apply relu2 to the output
     * @return the weight scale alpha (1 when ternary is false)
     */
    public static float forward(float[] out, float[] preact, float[] xHat, float[] actScale, float[] wHat,
                                float[] inp, float[] weight, int N, int C, int OC,
                                int actBits, boolean ternary, boolean relu2) {
        Check.positive("N", N, "C", C, "OC", OC);
        checkActBits(actBits);
        Check.len(out, "out", (long) N * OC, "N*OC");
        Check.len(inp, "inp", (long) N * C, "N*C");
        Check.len(weight, "weight", (long) OC * C, "OC*C");
        if (relu2) {
            Check.len(preact, "preact", (long) N * OC, "N*OC (relu2 is on)");
        }
        if (actBits != 0) {
            Check.len(xHat, "xHat", (long) N * C, "N*C (actBits != 0)");
            Check.len(actScale, "actScale", N, "N (actBits != 0)");
        }
        if (ternary) {
            Check.len(wHat, "wHat", (long) OC * C, "OC*C (ternary is on)");
        }
        float alpha = 1.0f;
        if (ternary) {
            alpha = Quantize.ternaryForward(wHat, null, weight, OC * C);
        }
        if (actBits != 0) {
            Quantize.activationForward(xHat, null, actScale, inp, N, C, actBits);
        }
        float[] x = actBits != 0 ? xHat : inp;
        float[] w = ternary ? wHat : weight;
        if (relu2) {
            Matmul.forward(preact, x, w, null, N, C, OC);
            Activations.relu2Forward(out, preact, N * OC);
        } else {
            Matmul.forward(out, x, w, null, N, C, OC);
        }
        return alpha;
    }

    /**
     * Accumulates dinp += dL/dx and dweight += dL/dW (straight-through). Either may be null when that
     * gradient is not wanted.
     *
     * @param dinp    (N, C) accumulated, or null
     * @param dweight (OC, C) accumulated, or null
     * @param dpreact (N, OC) scratch, overwritten with dL/d(preact) when relu2 is on; may be null otherwise
     * @param dout    (N, OC) the gradient of the loss with respect to out
     * @param preact  (N, OC) as saved by forward (read only when relu2 is on)
     * @param xHat    (N, C) as saved by forward (read only when actBits != 0)
     * @param wHat    (OC, C) as saved by forward (read only when ternary is on)
     * @param inp     (N, C) the forward input (read only when actBits is 0)
     * @param weight  (OC, C) the full-precision weight (read only when ternary is off)
     */
    public static void backward(float[] dinp, float[] dweight, float[] dpreact, float[] dout,
                                float[] preact, float[] xHat, float[] wHat, float[] inp, float[] weight,
                                int N, int C, int OC, int actBits, boolean ternary, boolean relu2) {
        Check.positive("N", N, "C", C, "OC", OC);
        checkActBits(actBits);
        Check.len(dout, "dout", (long) N * OC, "N*OC");
        if (relu2) {
            Check.len(dpreact, "dpreact", (long) N * OC, "N*OC (relu2 is on)");
            Check.len(preact, "preact", (long) N * OC, "N*OC (relu2 is on)");
        }
        float[] x = actBits != 0 ? xHat : inp;
        float[] w = ternary ? wHat : weight;
        if (dweight != null) {
            Check.len(x, actBits != 0 ? "xHat" : "inp", (long) N * C, "N*C");
        }
        if (dinp != null) {
            Check.len(w, ternary ? "wHat" : "weight", (long) OC * C, "OC*C");
        }
        float[] g = dout;
        if (relu2) {
            // dpreact is scratch: zero it, since relu2Backward accumulates.
            for (int i = 0; i < N * OC; i++) {
                dpreact[i] = 0.0f;
            }
            Activations.relu2Backward(dpreact, dout, preact, N * OC);
            g = dpreact;
        }
        // Matmul's backward gives dL/dx̂ and dL/dŴ. The straight-through estimator makes both quantizers the
        // identity (Quantize.activationBackward / ternaryBackward are dinp += dx̂, dW += dŴ), so Matmul
        // accumulates straight into dinp and dweight instead of through two more scratch buffers.
        Matmul.backward(dinp, dweight, null, g, x, w, N, C, OC);
    }

    private static void checkActBits(int actBits) {
        Check.arg(actBits == 0 || (actBits >= 2 && actBits <= 8), "actBits", actBits,
                "must be 0 (no activation quantization) or in [2, 8]");
    }
}
