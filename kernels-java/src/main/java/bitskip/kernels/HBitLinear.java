package bitskip.kernels;

/**
 * H-BitLinear (MODEL.md section 2, paper Eq. 3, after BitNet v2):
 * <pre>
 *   u  = LayerNorm(x)               its own learnable lnWeight, lnBias (C)
 *   u' = zero-pad u from C to P     P = Hadamard.nextPow2(C)
 *   z  = FWHT(u') / sqrt(P)         orthonormal, natural order
 *   y  = act(ẑ · Ŵᵀ)                the BitLinear tail: ẑ the per-token quantization of z to actBits bits,
 *                                   Ŵ the ternary weight of shape (OC, P): W lives in the rotated basis
 * </pre>
 * The quantize + matmul + relu2 tail is {@link BitLinear} itself (same switches: actBits 0 = no activation
 * quantization, ternary false = full-precision weights, relu2), so the two layers share one piece of code.
 *
 * <p>Backward: BitLinear's backward gives dL/dz (straight-through), the FWHT's backward is the same
 * transform, unpadding drops the gradient of the padding columns, and LayerNorm's backward gives dL/dx and
 * the LayerNorm parameter gradients.
 *
 * <p>Shapes: inp (N, C), out (N, OC), weight (OC, P).
 */
public final class HBitLinear {
    private HBitLinear() {}

    /**
     * @param out      (N, OC) written with act(ẑ · Ŵᵀ)
     * @param preact   (N, OC) written with ẑ · Ŵᵀ, saved; may be null when relu2 is false
     * @param zHat     (N, P) written with ẑ, saved; may be null when actBits is 0
     * @param actScale (N) written with each token's absmax scale of z; may be null when actBits is 0
     * @param wHat     (OC, P) written with Ŵ, saved; may be null when ternary is false
     * @param z        (N, P) written with the rotated activations z, saved (read by backward when actBits is 0)
     * @param lnOut    (N, C) scratch: the LayerNorm output before padding
     * @param lnMean   (N) written with the LayerNorm means, saved
     * @param lnRstd   (N) written with the LayerNorm reciprocal standard deviations, saved
     * @param inp      (N, C) the input x
     * @param lnWeight (C) the LayerNorm gain
     * @param lnBias   (C) the LayerNorm bias
     * @param weight   (OC, P) the full-precision weight W, in the rotated basis
     * @param P        the padded width: a power of two, {@code >= C} (normally {@code Hadamard.nextPow2(C)})
     * @param eps      the LayerNorm epsilon
     * @return the weight scale alpha (1 when ternary is false)
     */
    public static float forward(float[] out, float[] preact, float[] zHat, float[] actScale, float[] wHat,
                                float[] z, float[] lnOut, float[] lnMean, float[] lnRstd,
                                float[] inp, float[] lnWeight, float[] lnBias, float[] weight,
                                int N, int C, int P, int OC, float eps,
                                int actBits, boolean ternary, boolean relu2) {
        Check.positive("N", N, "C", C, "P", P, "OC", OC);
        Check.arg((P & (P - 1)) == 0, "P", P, "must be a power of two");
        Check.arg(P >= C, "P", P, "must be >= C = " + C + " (the row is padded, never truncated)");
        Check.len(z, "z", (long) N * P, "N*P");
        Check.len(lnOut, "lnOut", (long) N * C, "N*C");
        Check.len(weight, "weight", (long) OC * P, "OC*P (W lives in the rotated basis)");
        LayerNorm.forward(lnOut, lnMean, lnRstd, inp, lnWeight, lnBias, N, C, eps);
        Hadamard.padForward(z, lnOut, N, C, P);
        Hadamard.forward(z, z, N, P);
        return BitLinear.forward(out, preact, zHat, actScale, wHat, z, weight, N, P, OC, actBits, ternary, relu2);
    }

    /**
     * Accumulates dinp, dlnWeight, dlnBias and dweight. dweight may be null when the weight gradient is not
     * wanted; the LayerNorm gradients are always computed.
     *
     * @param dinp      (N, C) accumulated
     * @param dlnWeight (C) accumulated
     * @param dlnBias   (C) accumulated
     * @param dweight   (OC, P) accumulated, or null
     * @param dpreact   (N, OC) scratch when relu2 is on; may be null otherwise
     * @param dz        (N, P) scratch: dL/dz, then transformed in place into dL/du'
     * @param dlnOut    (N, C) scratch: dL/du, the gradient of the LayerNorm output
     * @param dout      (N, OC) the gradient of the loss with respect to out
     * @param preact    (N, OC), zHat (N, P), wHat (OC, P), z (N, P), lnMean (N), lnRstd (N): as saved by forward
     * @param inp       (N, C) the forward input
     * @param lnWeight  (C) the LayerNorm gain
     * @param weight    (OC, P) the full-precision weight
     */
    public static void backward(float[] dinp, float[] dlnWeight, float[] dlnBias, float[] dweight,
                                float[] dpreact, float[] dz, float[] dlnOut, float[] dout,
                                float[] preact, float[] zHat, float[] wHat, float[] z,
                                float[] lnMean, float[] lnRstd, float[] inp, float[] lnWeight, float[] weight,
                                int N, int C, int P, int OC, int actBits, boolean ternary, boolean relu2) {
        Check.positive("N", N, "C", C, "P", P, "OC", OC);
        Check.arg((P & (P - 1)) == 0, "P", P, "must be a power of two");
        Check.arg(P >= C, "P", P, "must be >= C = " + C + " (the row is padded, never truncated)");
        Check.len(dz, "dz", (long) N * P, "N*P");
        Check.len(dlnOut, "dlnOut", (long) N * C, "N*C");
        // dz and dlnOut are scratch that the backward passes below accumulate into: zero them first.
        for (int i = 0; i < N * P; i++) {
            dz[i] = 0.0f;
        }
        for (int i = 0; i < N * C; i++) {
            dlnOut[i] = 0.0f;
        }
        BitLinear.backward(dz, dweight, dpreact, dout, preact, zHat, wHat, z, weight, N, P, OC,
                actBits, ternary, relu2);
        // The scaled FWHT is symmetric and orthonormal, so its backward is the same transform; applied in
        // place (Hadamard.backward would need a second (N, P) buffer to accumulate into).
        Hadamard.forward(dz, dz, N, P);
        Hadamard.padBackward(dlnOut, dz, N, C, P);
        LayerNorm.backward(dinp, dlnWeight, dlnBias, dlnOut, inp, lnWeight, lnMean, lnRstd, N, C);
    }
}
