package bitskip.model.infer;

/**
 * The per-row float operations of inference, on slices of flat arrays (offsets instead of whole arrays).
 * Each reproduces the order of float operations of its kernel in {@code bitskip.kernels} (LayerNorm,
 * Hadamard, Quantize, Activations, Attention's softmax), so a row computed here is bit-identical to the
 * same row computed by the reference kernels; {@code RowOpsTest} checks it. {@link #hadamardQuantize} is
 * the fused Hadamard path of H-BitLinear: LayerNorm, zero-pad, FWHT, absmax quantization of one row in one
 * pass over a scratch row, writing the int8 codes as shorts for {@link PackedGemm#ternary}.
 */
public final class RowOps {
    private RowOps() {}

    static final float MIN_SCALE = 1e-6f;

    /** out[oOff..+C) = LayerNorm(inp[iOff..+C)) with weight/bias (both null: parameter-free). */
    public static void layerNorm(float[] out, int oOff, float[] inp, int iOff, float[] weight, float[] bias, int C,
                                 float eps) {
        float m = 0.0f;
        for (int c = 0; c < C; c++) {
            m += inp[iOff + c];
        }
        m = m / C;
        float var = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = inp[iOff + c] - m;
            var += d * d;
        }
        var = var / C;
        float s = (float) (1.0 / Math.sqrt(var + eps));
        for (int c = 0; c < C; c++) {
            float norm = (inp[iOff + c] - m) * s;
            out[oOff + c] = weight == null ? norm : norm * weight[c] + bias[c];
        }
    }

    /**
     * Per-token absmax quantization of x[xOff..+C) to bits: writes the codes to q[qOff..+C) (and zeros up to
     * qOff+Cp), returns s = max|x| clamped to >= 1e-6. Same operations as Quantize.activationForward.
     */
    public static float quantize(short[] q, int qOff, int Cp, float[] x, int xOff, int C, int bits) {
        float Q = (float) ((1 << (bits - 1)) - 1);
        float s = 0.0f;
        for (int c = 0; c < C; c++) {
            float a = Math.abs(x[xOff + c]);
            if (a > s) {
                s = a;
            }
        }
        if (s < MIN_SCALE) {
            s = MIN_SCALE;
        }
        for (int c = 0; c < C; c++) {
            float v = (float) Math.rint((Q * x[xOff + c]) / s);
            if (v > Q) {
                v = Q;
            } else if (v < -Q) {
                v = -Q;
            }
            q[qOff + c] = (short) v;
        }
        for (int c = C; c < Cp; c++) {
            q[qOff + c] = 0;
        }
        return s;
    }

    /**
     * The fused Hadamard path of one row: z = FWHT(pad(LayerNorm(x))) / sqrt(P) in scratch (P), then its
     * codes to q. Returns the absmax scale of z.
     */
    public static float hadamardQuantize(short[] q, int qOff, int Cp, float[] x, int xOff, int C, int P,
                                         float[] lnW, float[] lnB, float eps, int bits, float[] scratch) {
        layerNorm(scratch, 0, x, xOff, lnW, lnB, C, eps);
        for (int p = C; p < P; p++) {
            scratch[p] = 0.0f;
        }
        fwht(scratch, P);
        return quantize(q, qOff, Cp, scratch, 0, P, bits);
    }

    /** In-place orthonormal FWHT of a[0..P), natural order, as Hadamard.forward. */
    public static void fwht(float[] a, int P) {
        float scale = (float) (1.0 / Math.sqrt(P));
        for (int h = 1; h < P; h *= 2) {
            for (int i = 0; i < P; i += 2 * h) {
                for (int j = i; j < i + h; j++) {
                    float x = a[j];
                    float y = a[j + h];
                    a[j] = x + y;
                    a[j + h] = x - y;
                }
            }
        }
        for (int p = 0; p < P; p++) {
            a[p] = a[p] * scale;
        }
    }

    /** relu2 in place on a[off..+n), as Activations.relu2Forward. */
    public static void relu2(float[] a, int off, int n) {
        for (int i = off; i < off + n; i++) {
            float r = a[i] > 0.0f ? a[i] : 0.0f;
            a[i] = r * r;
        }
    }
}
