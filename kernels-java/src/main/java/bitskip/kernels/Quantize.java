package bitskip.kernels;

/**
 * The quantizers of BitLinear (MODEL.md section 2, paper Eq. 1–2) and their straight-through backward passes.
 *
 * <ul>
 *   <li>Weights, ternary, per tensor: {@code alpha = mean(|W|)} (clamped {@code >= 1e-6}),
 *       {@code Wq = +1 / 0 / -1} by comparing W with {@code ±0.5·alpha}, {@code Ŵ = alpha·Wq}.</li>
 *   <li>Activations, per token absmax to {@code bits} bits: {@code s = max|x|} (clamped {@code >= 1e-6}),
 *       {@code Q = 2^(bits-1) - 1}, {@code q = clamp(round(Q·x/s), -Q, Q)}, {@code x̂ = s·q/Q}.</li>
 * </ul>
 *
 * Training uses the straight-through estimator: backward treats both quantizers as the identity, and
 * alpha and s receive no gradient. The rounding is {@link Math#rint} (half to even, as {@code torch.round}),
 * and the exact order of float operations is part of the contract: other backends reproduce it bit for bit.
 */
public final class Quantize {
    private Quantize() {}

    /** Lower bound of alpha and of the per-token scale s, so an all-zero tensor never divides by zero. */
    private static final float MIN_SCALE = 1e-6f;

    /**
     * Ternary weight quantization of the first n elements of w (the whole matrix: the scale is per tensor).
     *
     * @param wHat  (n) written with alpha·code; may be null when only the codes are wanted
     * @param codes (n) written with the codes -1, 0, +1; may be null when only wHat is wanted
     * @param w     (n) the full-precision weights
     * @return alpha = mean(|w|), clamped to {@code >= 1e-6}
     */
    public static float ternaryForward(float[] wHat, byte[] codes, float[] w, int n) {
        // sumAbs checks w, ternaryCodes wHat and codes before it writes anything
        float alpha = (float) (sumAbs(w, n) / n);
        if (alpha < MIN_SCALE) {
            alpha = MIN_SCALE;
        }
        ternaryCodes(wHat, codes, w, n, alpha);
        return alpha;
    }

    /**
     * Σ |w| over n elements, in double: the mean runs over a whole weight matrix (up to millions of
     * elements), where a float running sum would lose the small terms once it is large, so alpha is
     * accumulated in double and rounded once.
     */
    public static double sumAbs(float[] w, int n) {
        Check.positive("n", n);
        Check.len(w, "w", n, "n");
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            sum += Math.abs(w[i]);
        }
        return sum;
    }

    /**
     * The ternary codes of n weights for a given alpha: +1 / 0 / −1 by comparing w with ±0.5·alpha (one
     * threshold for the whole tensor; a weight exactly at ±thr is not beyond it and becomes 0), written as
     * codes and/or as wHat = alpha·code; either may be null.
     */
    public static void ternaryCodes(float[] wHat, byte[] codes, float[] w, int n, float alpha) {
        Check.positive("n", n);
        Check.len(w, "w", n, "n");
        if (wHat != null) {
            Check.len(wHat, "wHat", n, "n");
        }
        if (codes != null) {
            Check.len(codes, "codes", n, "n");
        }
        float thr = 0.5f * alpha;
        for (int i = 0; i < n; i++) {
            float q = 0.0f;
            if (w[i] > thr) {
                q = 1.0f;
            } else if (w[i] < -thr) {
                q = -1.0f;
            }
            if (codes != null) {
                codes[i] = (byte) q;
            }
            if (wHat != null) {
                wHat[i] = alpha * q;
            }
        }
    }

    /** Straight-through estimator: accumulates dw += dwHat (the quantizer is the identity in backward). */
    public static void ternaryBackward(float[] dw, float[] dwHat, int n) {
        Check.positive("n", n);
        Check.len(dw, "dw", n, "n");
        Check.len(dwHat, "dwHat", n, "n");
        for (int i = 0; i < n; i++) {
            dw[i] += dwHat[i];
        }
    }

    /**
     * Per-token absmax quantization of activations to {@code bits} bits.
     *
     * @param out   (N, C) written with x̂ = s·q/Q; may be null when only the codes are wanted
     * @param codes (N, C) written with the integer levels q in [-Q, Q]; may be null
     * @param scale (N) written with each token's s = max|x| (clamped {@code >= 1e-6})
     * @param inp   (N, C) the activations x
     * @param bits  in [2, 8]; Q = 2^(bits-1) - 1 (127 for 8 bits, 7 for 4 bits)
     */
    public static void activationForward(float[] out, byte[] codes, float[] scale, float[] inp, int N, int C,
                                         int bits) {
        Check.positive("N", N, "C", C);
        Check.arg(bits >= 2 && bits <= 8, "bits", bits, "must be in [2, 8] (codes are signed bytes, Q >= 1)");
        Check.len(inp, "inp", (long) N * C, "N*C");
        Check.len(scale, "scale", N, "N");
        if (out != null) {
            Check.len(out, "out", (long) N * C, "N*C");
        }
        if (codes != null) {
            Check.len(codes, "codes", (long) N * C, "N*C");
        }
        float Q = (float) ((1 << (bits - 1)) - 1);
        for (int n = 0; n < N; n++) {
            int row = n * C;
            float s = 0.0f;
            for (int c = 0; c < C; c++) {
                float a = Math.abs(inp[row + c]);
                if (a > s) {
                    s = a;
                }
            }
            // An all-zero token keeps s = 1e-6: every q is then 0 and x̂ is 0, never 0/0.
            if (s < MIN_SCALE) {
                s = MIN_SCALE;
            }
            for (int c = 0; c < C; c++) {
                // (Q·x)/s in this order, rounded half to even; the clamp only guards against Q·x/s
                // rounding a hair above Q for the absmax element.
                float q = (float) Math.rint((Q * inp[row + c]) / s);
                if (q > Q) {
                    q = Q;
                } else if (q < -Q) {
                    q = -Q;
                }
                if (out != null) {
                    out[row + c] = (s * q) / Q;
                }
                if (codes != null) {
                    codes[row + c] = (byte) q;
                }
            }
            scale[n] = s;
        }
    }

    /** Straight-through estimator: accumulates dinp += dout over n elements. */
    public static void activationBackward(float[] dinp, float[] dout, int n) {
        Check.positive("n", n);
        Check.len(dinp, "dinp", n, "n");
        Check.len(dout, "dout", n, "n");
        for (int i = 0; i < n; i++) {
            dinp[i] += dout[i];
        }
    }

    /**
     * The quantization error Σ (w - ŵ)² over n elements (the quantization loss term, before the model's
     * normalization). Accumulated in double: it sums squares over whole weight matrices, where a float
     * running sum would stop absorbing the small terms.
     */
    public static double squaredError(float[] w, float[] wHat, int n) {
        Check.positive("n", n);
        Check.len(w, "w", n, "n");
        Check.len(wHat, "wHat", n, "n");
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            double d = w[i] - wHat[i];
            sum += d * d;
        }
        return sum;
    }

    /**
     * Accumulates dw += scale·2·(w - ŵ): the gradient of {@code scale·squaredError} with ŵ held constant
     * (a stop-gradient on the quantized weights, so the term pulls W towards its ternary grid).
     */
    public static void squaredErrorBackward(float[] dw, float[] w, float[] wHat, int n, float scale) {
        Check.positive("n", n);
        Check.len(dw, "dw", n, "n");
        Check.len(w, "w", n, "n");
        Check.len(wHat, "wHat", n, "n");
        for (int i = 0; i < n; i++) {
            dw[i] += scale * 2.0f * (w[i] - wHat[i]);
        }
    }
}
