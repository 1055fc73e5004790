package bitskip.kernels;

/**
 * Causal grouped-query attention (MODEL.md section 1): per query head h and query position t,
 * {@code probs[t, s] = softmax_s(q_t · k_s / sqrt(HS))} over keys s = 0..t, and
 * {@code out_t = Σ_s probs[t, s] · dropMask[t, s] · v_s}.
 *
 * <p>Layouts: q and out (B, T, NH, HS); k and v (B, T, NKV, HS); probs and dropMask (B, NH, T, T).
 * Query head h reads KV head {@code h / (NH / NKV)}: with NH = 2·NKV, KV head j serves query heads 2j and
 * 2j+1, which is what {@code repeat_interleave} of the KV heads does in PyTorch.
 *
 * <p>Dropout acts on the probabilities after the softmax (as {@code nn.Dropout} on the attention weights).
 * The caller draws the mask: each entry is 0 (dropped) or 1/(1−p) (kept); null means no dropout.
 * probs holds the probabilities BEFORE dropout, so the backward pass can redo the softmax derivative.
 */
public final class Attention {
    private Attention() {}

    /** Overwrites out and probs. Entries of probs above the diagonal (s > t) are written as 0. */
    public static void forward(float[] out, float[] probs, float[] q, float[] k, float[] v, float[] dropMask,
                               int B, int T, int NH, int NKV, int HS) {
        checkShapes(q, k, v, probs, dropMask, B, T, NH, NKV, HS);
        Check.len(out, "out", (long) B * T * NH * HS, "B*T*NH*HS");
        int group = NH / NKV; // query heads per KV head
        float scale = (float) (1.0 / Math.sqrt(HS));
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                int kvh = h / group;
                int block = (b * NH + h) * T * T; // this head's (T, T) probabilities
                // the scores of the visible keys 0..t of every query t
                for (int t = 0; t < T; t++) {
                    int qo = ((b * T + t) * NH + h) * HS;
                    int prow = block + t * T;
                    for (int s = 0; s <= t; s++) {
                        int ko = ((b * T + s) * NKV + kvh) * HS;
                        float dot = 0.0f;
                        for (int i = 0; i < HS; i++) {
                            dot += q[qo + i] * k[ko + i];
                        }
                        probs[prow + s] = dot * scale;
                    }
                }
                softmaxRows(probs, block, T, T);
                // out_t = Σ_s probs·mask·v_s
                for (int t = 0; t < T; t++) {
                    int prow = block + t * T;
                    int oo = ((b * T + t) * NH + h) * HS;
                    for (int i = 0; i < HS; i++) {
                        out[oo + i] = 0.0f;
                    }
                    for (int s = 0; s <= t; s++) {
                        float w = dropMask == null ? probs[prow + s] : probs[prow + s] * dropMask[prow + s];
                        int vo = ((b * T + s) * NKV + kvh) * HS;
                        for (int i = 0; i < HS; i++) {
                            out[oo + i] += w * v[vo + i];
                        }
                    }
                }
            }
        }
    }

    /**
     * The causal softmax, in place on {@code rows} rows of T scores from x[off] on, the rows of (T, T) blocks:
     * row r keeps its first (r mod T) + 1 entries (query t = r mod T sees keys 0..t), shifted by their
     * maximum (so that exp never overflows; the softmax is unchanged by the shift), exponentiated, summed and
     * normalized by one multiplication; the entries after them (future keys) become exactly 0.
     */
    public static void softmaxRows(float[] x, int off, int rows, int T) {
        Check.positive("rows", rows, "T", T);
        Check.len(x, "x", (long) off + (long) rows * T, "off + rows*T");
        for (int r = 0; r < rows; r++) {
            int row = off + r * T;
            int t = r % T;
            float max = Float.NEGATIVE_INFINITY;
            for (int s = 0; s <= t; s++) {
                if (x[row + s] > max) {
                    max = x[row + s];
                }
            }
            float sum = 0.0f;
            for (int s = 0; s <= t; s++) {
                float e = (float) Math.exp(x[row + s] - max);
                x[row + s] = e;
                sum += e;
            }
            float inv = 1.0f / sum;
            for (int s = 0; s <= t; s++) {
                x[row + s] = x[row + s] * inv;
            }
            for (int s = t + 1; s < T; s++) {
                x[row + s] = 0.0f;
            }
        }
    }

    /**
     * The backward of {@link #softmaxRows}, in place on d (the gradient of the probabilities p, rows laid out
     * as there): the first (r mod T) + 1 entries become p_s·(d_s − Σ_u p_u·d_u)·scale (the softmax's Jacobian
     * times d, and the scores' scale), the others 0.
     */
    public static void softmaxBackwardRows(float[] d, int dOff, float[] p, int pOff, int rows, int T, float scale) {
        Check.positive("rows", rows, "T", T);
        Check.len(d, "d", (long) dOff + (long) rows * T, "dOff + rows*T");
        Check.len(p, "p", (long) pOff + (long) rows * T, "pOff + rows*T");
        for (int r = 0; r < rows; r++) {
            int t = r % T;
            softmaxBackwardRow(d, dOff + r * T, p, pOff + r * T, t + 1, scale);
            for (int s = t + 1; s < T; s++) {
                d[dOff + r * T + s] = 0.0f;
            }
        }
    }

    /** One row of {@link #softmaxBackwardRows}: its first len entries. */
    private static void softmaxBackwardRow(float[] d, int dOff, float[] p, int pOff, int len, float scale) {
        float pdp = 0.0f;
        for (int s = 0; s < len; s++) {
            pdp += p[pOff + s] * d[dOff + s];
        }
        for (int s = 0; s < len; s++) {
            d[dOff + s] = p[pOff + s] * (d[dOff + s] - pdp) * scale;
        }
    }

    /**
     * Accumulates dq (B,T,NH,HS), dk and dv (B,T,NKV,HS) from dout (B,T,NH,HS). A KV head shared by several
     * query heads sums the gradients of all of them. scratch (length >= T) holds one row of dprobs.
     */
    public static void backward(float[] dq, float[] dk, float[] dv, float[] scratch, float[] dout, float[] q,
                                float[] k, float[] v, float[] probs, float[] dropMask, int B, int T, int NH,
                                int NKV, int HS) {
        checkShapes(q, k, v, probs, dropMask, B, T, NH, NKV, HS);
        Check.len(dq, "dq", (long) B * T * NH * HS, "B*T*NH*HS");
        Check.len(dk, "dk", (long) B * T * NKV * HS, "B*T*NKV*HS");
        Check.len(dv, "dv", (long) B * T * NKV * HS, "B*T*NKV*HS");
        Check.len(dout, "dout", (long) B * T * NH * HS, "B*T*NH*HS");
        Check.len(scratch, "scratch", T, "T: one row of dprobs");
        int group = NH / NKV;
        float scale = (float) (1.0 / Math.sqrt(HS));
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                int kvh = h / group;
                for (int t = 0; t < T; t++) {
                    int qo = ((b * T + t) * NH + h) * HS;
                    int prow = ((b * NH + h) * T + t) * T;
                    // out_t = Σ_s P_s·M_s·v_s  gives  dv_s += P_s·M_s·dout_t  and  dP_s = M_s·(dout_t · v_s)
                    for (int s = 0; s <= t; s++) {
                        int vo = ((b * T + s) * NKV + kvh) * HS;
                        float m = dropMask == null ? 1.0f : dropMask[prow + s];
                        float w = probs[prow + s] * m;
                        float dot = 0.0f;
                        for (int i = 0; i < HS; i++) {
                            dot += dout[qo + i] * v[vo + i];
                            dv[vo + i] += w * dout[qo + i];
                        }
                        scratch[s] = dot * m;
                    }
                    // softmax backward: scratch_s becomes dscore_s = P_s·(dP_s − Σ_u P_u·dP_u)·scale
                    softmaxBackwardRow(scratch, 0, probs, prow, t + 1, scale);
                    // score_s = scale·(q_t · k_s)  gives  dq_t += dscore_s·k_s,  dk_s += dscore_s·q_t
                    for (int s = 0; s <= t; s++) {
                        float dscore = scratch[s];
                        int ko = ((b * T + s) * NKV + kvh) * HS;
                        for (int i = 0; i < HS; i++) {
                            dq[qo + i] += dscore * k[ko + i];
                            dk[ko + i] += dscore * q[qo + i];
                        }
                    }
                }
            }
        }
    }

    private static void checkShapes(float[] q, float[] k, float[] v, float[] probs, float[] dropMask, int B, int T,
                                    int NH, int NKV, int HS) {
        Check.positive("B", B, "T", T, "NH", NH, "NKV", NKV, "HS", HS);
        Check.arg(NH % NKV == 0, "NKV", NKV, "must divide NH = " + NH);
        Check.len(q, "q", (long) B * T * NH * HS, "B*T*NH*HS");
        Check.len(k, "k", (long) B * T * NKV * HS, "B*T*NKV*HS");
        Check.len(v, "v", (long) B * T * NKV * HS, "B*T*NKV*HS");
        Check.len(probs, "probs", (long) B * NH * T * T, "B*NH*T*T");
        if (dropMask != null) {
            Check.len(dropMask, "dropMask", (long) B * NH * T * T, "B*NH*T*T");
        }
    }
}
