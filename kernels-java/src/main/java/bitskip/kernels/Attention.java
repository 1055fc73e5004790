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
                for (int t = 0; t < T; t++) {
                    int qo = ((b * T + t) * NH + h) * HS;
                    int prow = ((b * NH + h) * T + t) * T;
                    // scores of the visible keys 0..t, and their maximum (subtracted before exp so that
                    // exp never overflows; the softmax is unchanged by the shift)
                    float max = Float.NEGATIVE_INFINITY;
                    for (int s = 0; s <= t; s++) {
                        int ko = ((b * T + s) * NKV + kvh) * HS;
                        float dot = 0.0f;
                        for (int i = 0; i < HS; i++) {
                            dot += q[qo + i] * k[ko + i];
                        }
                        float score = dot * scale;
                        probs[prow + s] = score;
                        if (score > max) {
                            max = score;
                        }
                    }
                    float sum = 0.0f;
                    for (int s = 0; s <= t; s++) {
                        float e = (float) Math.exp(probs[prow + s] - max);
                        probs[prow + s] = e;
                        sum += e;
                    }
                    float inv = 1.0f / sum;
                    for (int s = 0; s <= t; s++) {
                        probs[prow + s] = probs[prow + s] * inv;
                    }
                    // the causal mask: future keys get probability exactly 0
                    for (int s = t + 1; s < T; s++) {
                        probs[prow + s] = 0.0f;
                    }
                    // out_t = Σ_s probs·mask·v_s
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
                    // softmax backward: dscore_s = P_s·(dP_s − Σ_u P_u·dP_u)
                    float pdp = 0.0f;
                    for (int s = 0; s <= t; s++) {
                        pdp += probs[prow + s] * scratch[s];
                    }
                    // score_s = scale·(q_t · k_s)  gives  dq_t += scale·dscore_s·k_s,  dk_s += scale·dscore_s·q_t
                    for (int s = 0; s <= t; s++) {
                        float dscore = probs[prow + s] * (scratch[s] - pdp) * scale;
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
