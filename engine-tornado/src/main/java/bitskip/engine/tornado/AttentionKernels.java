package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Rotary embeddings and causal grouped-query attention (kernels-java Rope and Attention). Attention runs one
 * work-item per (sample, head, query position) row with the row's loops in the reference's order; the
 * backward pass keeps the whole (B, NH, T, T) matrix of score gradients (the reference keeps one row), then
 * sums the key and value gradients with one work-item per (sample, key position, KV head, channel), over the
 * group's query heads and the later positions in the reference's order.
 */
final class AttentionKernels {
    private AttentionKernels() {}

    /**
     * RoPE (kernels-java Rope): out = inp rotated by the (cos, sin) table at pos0 + t, or with backward
     * out += the transposed rotation of inp (the gradient). a = (out, inp, cos, sin, B, T, NH, HS, pos0,
     * backward).
     */
    static void rope(FloatArray m, IntArray a) {
        int out = a.get(0), inp = a.get(1), cs = a.get(2), sn = a.get(3);
        int T = a.get(5), NH = a.get(6), HS = a.get(7), pos0 = a.get(8);
        boolean backward = a.get(9) != 0;
        int hs2 = HS / 2;
        for (@Parallel int i = 0; i < a.get(4) * T * NH * hs2; i++) {
            int j = i % hs2, bth = i / hs2;
            int t = (bth / NH) % T;
            int lo = bth * HS + j, hi = lo + hs2, tab = (pos0 + t) * hs2 + j;
            float c = m.get(cs + tab), s = m.get(sn + tab);
            float x1 = m.get(inp + lo), x2 = m.get(inp + hi);
            if (backward) {
                m.set(out + lo, m.get(out + lo) + (x1 * c + x2 * s));
                m.set(out + hi, m.get(out + hi) + (-x1 * s + x2 * c));
            } else {
                m.set(out + lo, x1 * c - x2 * s);
                m.set(out + hi, x2 * c + x1 * s);
            }
        }
    }

    /**
     * out (B, T, NH, HS) and probs (B, NH, T, T) of causal softmax attention; dropMask (same shape as probs)
     * scales the probabilities used for out when hasMask. a = (out, probs, q, k, v, dropMask, hasMask, B, T,
     * NH, NKV, HS); f = (1/sqrt(HS)).
     */
    static void forward(FloatArray m, IntArray a, FloatArray f) {
        int out = a.get(0), probs = a.get(1), q = a.get(2), k = a.get(3), v = a.get(4), mask = a.get(5);
        boolean hasMask = a.get(6) != 0;
        int T = a.get(8), NH = a.get(9), NKV = a.get(10), HS = a.get(11);
        float scale = f.get(0);
        for (@Parallel int r = 0; r < a.get(7) * NH * T; r++) {
            int t = r % T, h = (r / T) % NH, b = r / (T * NH);
            int kvh = h / (NH / NKV);
            int qo = ((b * T + t) * NH + h) * HS;
            int prow = probs + ((b * NH + h) * T + t) * T;
            int mrow = mask + ((b * NH + h) * T + t) * T;
            for (int s = 0; s <= t; s++) {
                int ko = ((b * T + s) * NKV + kvh) * HS;
                float dot = 0.0f;
                for (int i = 0; i < HS; i++) {
                    dot += m.get(q + qo + i) * m.get(k + ko + i);
                }
                m.set(prow + s, dot * scale);
            }
            RowKernels.softmaxRow(m, prow, t + 1, T);
            for (int i = 0; i < HS; i++) {
                m.set(out + qo + i, 0.0f);
            }
            for (int s = 0; s <= t; s++) {
                float w = hasMask ? m.get(prow + s) * m.get(mrow + s) : m.get(prow + s);
                int vo = ((b * T + s) * NKV + kvh) * HS;
                for (int i = 0; i < HS; i++) {
                    m.set(out + qo + i, m.get(out + qo + i) + w * m.get(v + vo + i));
                }
            }
        }
    }

    /**
     * The score gradients of each query row into dscore (B, NH, T, T), then dq += Σ_s dscore·k_s. a = (dq,
     * dscore, dout, q, k, v, probs, dropMask, hasMask, B, T, NH, NKV, HS); f = (1/sqrt(HS)).
     */
    static void backwardQuery(FloatArray m, IntArray a, FloatArray f) {
        int dq = a.get(0), dscore = a.get(1), dout = a.get(2), k = a.get(4), v = a.get(5);
        int probs = a.get(6), mask = a.get(7);
        boolean hasMask = a.get(8) != 0;
        int T = a.get(10), NH = a.get(11), NKV = a.get(12), HS = a.get(13);
        float scale = f.get(0);
        for (@Parallel int r = 0; r < a.get(9) * NH * T; r++) {
            int t = r % T, h = (r / T) % NH, b = r / (T * NH);
            int kvh = h / (NH / NKV);
            int qo = ((b * T + t) * NH + h) * HS;
            int row = ((b * NH + h) * T + t) * T;
            for (int s = 0; s <= t; s++) {
                int vo = ((b * T + s) * NKV + kvh) * HS;
                float mk = hasMask ? m.get(mask + row + s) : 1.0f;
                float dot = 0.0f;
                for (int i = 0; i < HS; i++) {
                    dot += m.get(dout + qo + i) * m.get(v + vo + i);
                }
                m.set(dscore + row + s, dot * mk);
            }
            RowKernels.softmaxBackwardRow(m, dscore + row, probs + row, t + 1, T, scale);
            for (int i = 0; i < HS; i++) {
                float acc = m.get(dq + qo + i);
                for (int s = 0; s <= t; s++) {
                    int ko = ((b * T + s) * NKV + kvh) * HS;
                    acc += m.get(dscore + row + s) * m.get(k + ko + i);
                }
                m.set(dq + qo + i, acc);
            }
        }
    }

    /**
     * dk += Σ dscore·q and dv += Σ probs·mask·dout over the group's heads and the positions t ≥ s, one
     * work-item per (b, s, kvh, i). a = (dk, dv, dscore, dout, q, probs, dropMask, hasMask, B, T, NH, NKV, HS).
     */
    static void backwardKeyValue(FloatArray m, IntArray a) {
        int dk = a.get(0), dv = a.get(1), dscore = a.get(2), dout = a.get(3), q = a.get(4), probs = a.get(5);
        int mask = a.get(6);
        boolean hasMask = a.get(7) != 0;
        int T = a.get(9), NH = a.get(10), NKV = a.get(11), HS = a.get(12);
        int group = NH / NKV;
        for (@Parallel int r = 0; r < a.get(8) * T * NKV * HS; r++) {
            int i = r % HS, kvh = (r / HS) % NKV, s = (r / (HS * NKV)) % T, b = r / (HS * NKV * T);
            float accv = m.get(dv + r), acck = m.get(dk + r);
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                for (int t = s; t < T; t++) {
                    int qo = ((b * T + t) * NH + h) * HS;
                    int row = ((b * NH + h) * T + t) * T;
                    float mk = hasMask ? m.get(mask + row + s) : 1.0f;
                    float w = m.get(probs + row + s) * mk;
                    accv += w * m.get(dout + qo + i);
                    acck += m.get(dscore + row + s) * m.get(q + qo + i);
                }
            }
            m.set(dv + r, accv);
            m.set(dk + r, acck);
        }
    }
}
