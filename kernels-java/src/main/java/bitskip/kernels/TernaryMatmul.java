package bitskip.kernels;

/**
 * The integer core of a deployed BitLinear / H-BitLinear projection (MODEL.md section 2): int8 activation
 * codes q (per-token absmax, {@link Quantize#activationForward}) times ternary weight codes, accumulated
 * in int32, then one float scale per element:
 * <pre>
 *   acc[n, o] = Σ_c codes[o, c] · q[n, c]                 exact (|acc| ≤ 127·C fits in int32)
 *   y[n, o]   = acc[n, o] · ((alpha · s[n]) / Q)           Q = 2^(bits-1) - 1
 * </pre>
 * This equals the training forward {@code x̂ · Ŵᵀ = Σ_c (s·q/Q)·(alpha·code)} up to float rounding (the
 * training path rounds every product; this one rounds once). The scalar reference of the packed fast path:
 * codes unpacked (one byte each), plain loops. The fast path must reproduce acc bit for bit and the float
 * scaling with the same expression.
 *
 * <p>Shapes: q (N, C), codes (OC, C), acc and out (N, OC), scale (N).
 */
public final class TernaryMatmul {
    private TernaryMatmul() {}

    /** Overwrites acc (N, OC) with the int32 products of q (N, C) and codes (OC, C)ᵀ. */
    public static void forward(int[] acc, byte[] q, byte[] codes, int N, int C, int OC) {
        Check.positive("N", N, "C", C, "OC", OC);
        Check.len(acc, "acc", (long) N * OC, "N*OC");
        Check.len(q, "q", (long) N * C, "N*C");
        Check.len(codes, "codes", (long) OC * C, "OC*C");
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < OC; o++) {
                int sum = 0;
                for (int c = 0; c < C; c++) {
                    sum += codes[o * C + c] * q[n * C + c];
                }
                acc[n * OC + o] = sum;
            }
        }
    }

    /**
     * Overwrites out (N, OC) with acc · ((alpha · scale[n]) / Q), then relu2 when asked (as BitLinear's
     * output activation).
     */
    public static void dequantize(float[] out, int[] acc, float[] scale, float alpha, int N, int OC, int bits,
                                  boolean relu2) {
        Check.positive("N", N, "OC", OC);
        Check.arg(bits >= 2 && bits <= 8, "bits", bits, "must be in [2, 8]");
        Check.len(out, "out", (long) N * OC, "N*OC");
        Check.len(acc, "acc", (long) N * OC, "N*OC");
        Check.len(scale, "scale", N, "N");
        float Q = (float) ((1 << (bits - 1)) - 1);
        for (int n = 0; n < N; n++) {
            float f = (alpha * scale[n]) / Q;
            for (int o = 0; o < OC; o++) {
                float y = acc[n * OC + o] * f;
                if (relu2) {
                    float r = y > 0.0f ? y : 0.0f;
                    y = r * r;
                }
                out[n * OC + o] = y;
            }
        }
    }
}
