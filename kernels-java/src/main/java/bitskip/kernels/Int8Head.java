package bitskip.kernels;

/**
 * The int8 LM head of a deployed model (inference only, no backward): the head's float weights W (V, C)
 * quantized per row to int8, the input rows quantized per row to codes of ±Q (Q = 255, 9 bits, or 127, 8 bits:
 * the file's {@code activation_levels}), exact integer dot products, and one rounding per logit:
 * <pre>
 *   scale[o] = max_c |W[o, c]| / 127            q[o, c] = clamp(rint(W[o, c] · (127 / max_c |W[o, c]|)), ±127)
 *   s[n]     = max(max_c |x[n, c]|, 1e-6)       xq[n, c] = clamp(rint((Q · x[n, c]) / s[n]), ±Q)
 *   acc[n, o] = Σ_c q[o, c] · xq[n, c]          exact (|q·xq| ≤ 127·255, C < 65536 terms fit in int32)
 *   out[n, o] = (acc[n, o] · (s[n] / Q)) · scale[o]
 * </pre>
 * A row of zeros keeps scale 0 and q 0. The scalar reference of the Vector API path in
 * {@code bitskip.model.infer.LmHead}, which must reproduce it bit for bit.
 *
 * <p>Shapes: W and q (V, C), scale (V), x (N, C), xq (N, C) and s (N) scratch, out (N, V).
 */
public final class Int8Head {
    private Int8Head() {}

    public static final int W_LEVELS = 127;
    /** The activation levels Q a head may use: 255 (9-bit codes, the default) and 127 (8-bit codes). */
    public static final int X_LEVELS = 255, X_LEVELS_8 = 127;

    /** Overwrites q (V, C) and scale (V) with the per-row int8 quantization of w (V, C). */
    public static void quantize(byte[] q, float[] scale, float[] w, int V, int C) {
        Check.positive("V", V, "C", C);
        Check.len(w, "w", (long) V * C, "V*C");
        Check.len(q, "q", (long) V * C, "V*C");
        Check.len(scale, "scale", V, "V");
        for (int o = 0; o < V; o++) {
            float max = 0.0f;
            for (int c = 0; c < C; c++) {
                max = Math.max(max, Math.abs(w[o * C + c]));
            }
            scale[o] = max / W_LEVELS;
            float inv = max > 0.0f ? W_LEVELS / max : 0.0f;
            for (int c = 0; c < C; c++) {
                float v = (float) Math.rint(w[o * C + c] * inv);
                q[o * C + c] = (byte) Math.max(-W_LEVELS, Math.min(W_LEVELS, v));
            }
        }
    }

    /**
     * Overwrites out (N, V) with the int8 head's logits of x (N, C), its rows quantized to codes of ±xLevels
     * ({@link #X_LEVELS} or {@link #X_LEVELS_8}); xq (N, C) and s (N) are scratch.
     */
    public static void forward(float[] out, int[] xq, float[] s, float[] x, byte[] q, float[] scale, int N, int C, int V,
                               int xLevels) {
        Check.positive("N", N, "C", C, "V", V);
        Check.arg(xLevels == X_LEVELS || xLevels == X_LEVELS_8, "xLevels", xLevels, "must be 255 or 127");
        Check.arg(C < 65536, "C", C, "must be below 65536 (the int32 sums of 127·255 products)");
        Check.len(out, "out", (long) N * V, "N*V");
        Check.len(xq, "xq", (long) N * C, "N*C");
        Check.len(s, "s", N, "N");
        Check.len(x, "x", (long) N * C, "N*C");
        Check.len(q, "q", (long) V * C, "V*C");
        Check.len(scale, "scale", V, "V");
        float Q = (float) xLevels;
        for (int n = 0; n < N; n++) {
            float m = 0.0f;
            for (int c = 0; c < C; c++) {
                m = Math.max(m, Math.abs(x[n * C + c]));
            }
            if (m < 1e-6f) {
                m = 1e-6f;
            }
            s[n] = m;
            for (int c = 0; c < C; c++) {
                float v = (float) Math.rint((Q * x[n * C + c]) / m);
                xq[n * C + c] = (int) Math.max(-Q, Math.min(Q, v));
            }
        }
        for (int n = 0; n < N; n++) {
            float f = s[n] / Q;
            for (int o = 0; o < V; o++) {
                int acc = 0;
                for (int c = 0; c < C; c++) {
                    acc += q[o * C + c] * xq[n * C + c];
                }
                out[n * V + o] = (acc * f) * scale[o];
            }
        }
    }
}
