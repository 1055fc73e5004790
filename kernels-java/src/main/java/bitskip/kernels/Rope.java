package bitskip.kernels;

/**
 * Rotary position embedding (RoPE), "rotate-half" pairing as in GPT-NeoX / Llama: within each head,
 * dimension j (j < HS/2) is rotated together with dimension j + HS/2 by the angle pos · theta^(−2j/HS).
 * q is (B, T, NH, HS); for k call the same kernels with NKV in place of NH. The cos/sin tables are
 * (maxT, HS/2), filled once by {@link #table}. Rotation is orthogonal, so the backward pass is the
 * rotation by the opposite angle.
 */
public final class Rope {
    private Rope() {}

    /**
     * Fills cos and sin (maxT, HS/2). The angle is computed entirely in double: t · theta^(−2j/HS) reaches
     * several hundred radians at long contexts, where a float angle would lose the low digits that the
     * cosine needs. Only the final cos/sin are rounded to the kernel's precision.
     */
    public static void table(float[] cos, float[] sin, int maxT, int HS, float theta) {
        Check.positive("maxT", maxT, "HS", HS);
        Check.arg(HS % 2 == 0, "HS", HS, "must be even (dimensions are rotated in pairs)");
        Check.arg(theta > 0.0f, "theta", theta, "must be positive");
        int half = HS / 2;
        Check.len(cos, "cos", (long) maxT * half, "maxT*HS/2");
        Check.len(sin, "sin", (long) maxT * half, "maxT*HS/2");
        for (int t = 0; t < maxT; t++) {
            for (int j = 0; j < half; j++) {
                double angle = t * Math.pow(theta, -2.0 * j / HS);
                cos[t * half + j] = (float) Math.cos(angle);
                sin[t * half + j] = (float) Math.sin(angle);
            }
        }
    }

    /**
     * Overwrites out with the rotated inp; time step t is at position pos0 + t. out may be the same array as
     * inp: each pair is read completely before either element is written.
     */
    public static void forward(float[] out, float[] inp, float[] cos, float[] sin, int B, int T, int NH, int HS,
                               int pos0) {
        check(out, "out", inp, "inp", cos, sin, B, T, NH, HS, pos0);
        int half = HS / 2;
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                int tab = (pos0 + t) * half;
                for (int h = 0; h < NH; h++) {
                    int base = ((b * T + t) * NH + h) * HS;
                    for (int j = 0; j < half; j++) {
                        float c = cos[tab + j];
                        float s = sin[tab + j];
                        float x1 = inp[base + j];
                        float x2 = inp[base + j + half];
                        out[base + j] = x1 * c - x2 * s;
                        out[base + j + half] = x2 * c + x1 * s;
                    }
                }
            }
        }
    }

    /** Accumulates the transposed rotation: dx1 += dy1·c + dy2·s, dx2 += −dy1·s + dy2·c. */
    public static void backward(float[] dinp, float[] dout, float[] cos, float[] sin, int B, int T, int NH, int HS,
                                int pos0) {
        check(dinp, "dinp", dout, "dout", cos, sin, B, T, NH, HS, pos0);
        int half = HS / 2;
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                int tab = (pos0 + t) * half;
                for (int h = 0; h < NH; h++) {
                    int base = ((b * T + t) * NH + h) * HS;
                    for (int j = 0; j < half; j++) {
                        float c = cos[tab + j];
                        float s = sin[tab + j];
                        float dy1 = dout[base + j];
                        float dy2 = dout[base + j + half];
                        dinp[base + j] += dy1 * c + dy2 * s;
                        dinp[base + j + half] += -dy1 * s + dy2 * c;
                    }
                }
            }
        }
    }

    private static void check(float[] x, String xName, float[] y, String yName, float[] cos, float[] sin,
                              int B, int T, int NH, int HS, int pos0) {
        Check.positive("B", B, "T", T, "NH", NH, "HS", HS);
        Check.arg(HS % 2 == 0, "HS", HS, "must be even (dimensions are rotated in pairs)");
        Check.arg(pos0 >= 0, "pos0", pos0, "must be non-negative");
        long n = (long) B * T * NH * HS;
        Check.len(x, xName, n, "B*T*NH*HS");
        Check.len(y, yName, n, "B*T*NH*HS");
        // The tables must have a row for the last position used; their maxT is not passed, so the length
        // needed is stated in terms of pos0 + T.
        long rows = (long) (pos0 + (long) T) * (HS / 2);
        Check.len(cos, "cos", rows, "(pos0+T)*HS/2");
        Check.len(sin, "sin", rows, "(pos0+T)*HS/2");
    }
}
