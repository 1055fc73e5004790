package bitskip.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The same inputs twice on the same thread count give bit-identical results: a forward/backward chain of
 * the ops with reductions (LayerNorm, BitLinear, H-BitLinear, attention, router, headLoss, sumSquares) run on
 * two fresh backends, every output compared bit for bit.
 */
class CpuBackendDeterminismTest {

    /** Per test (not @BeforeAll), so that each test is reported as skipped, with the reason, without OpenBLAS. */
    @BeforeEach
    void requireOpenBlas() {
        Requirements.skipOrFail("cpu", CpuBackend.unavailableReason()).ifPresent(r -> abort("cpu backend tests skipped: " + r));
    }

    @ParameterizedTest
    @CsvSource({"2, true", "2, false", "1, true"})
    void sameInputsSameBits(int threads, boolean vector) {
        List<float[]> a = run(threads, vector);
        List<float[]> b = run(threads, vector);
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            float[] x = a.get(i), y = b.get(i);
            for (int j = 0; j < x.length; j++) {
                if (Float.floatToRawIntBits(x[j]) != Float.floatToRawIntBits(y[j])) {
                    assertArrayEquals(x, y, "result #" + i + " differs at [" + j + "]");
                }
            }
        }
    }

    private static List<float[]> run(int threads, boolean vector) {
        List<float[]> out = new ArrayList<>();
        Random rnd = new Random(42);
        try (CpuBackend be = new CpuBackend(threads, vector)) {
            int B = 2, T = 16, N = B * T, C = 128, P = 128, OC = 96, NH = 4, NKV = 2, HS = 32, V = 1000, H = 32;
            Tensor x = rand(be, rnd, N * C), lw = rand(be, rnd, C), lb = rand(be, rnd, C);
            Tensor ln = be.alloc("ln", N * C), mean = be.alloc("mean", N), rstd = be.alloc("rstd", N);
            be.layerNormForward(ln, mean, rstd, x, lw, lb, N, C, 1e-5f);
            Tensor dx = rand(be, rnd, N * C), dlw = rand(be, rnd, C), dlb = rand(be, rnd, C);
            Tensor g = rand(be, rnd, N * C);
            be.layerNormBackward(dx, dlw, dlb, g, x, lw, mean, rstd, N, C);
            add(out, be, ln, mean, rstd, dx, dlw, dlb);

            Tensor w = rand(be, rnd, OC * C), o = be.alloc("o", N * OC), pre = be.alloc("pre", N * OC);
            Tensor xh = be.alloc("xh", N * C), sc = be.alloc("sc", N), wh = be.alloc("wh", OC * C);
            float alpha = be.bitLinearForward(o, pre, xh, sc, wh, x, w, N, C, OC, 8, true, true);
            Tensor dw = rand(be, rnd, OC * C), dpre = be.alloc("dpre", N * OC), go = rand(be, rnd, N * OC);
            be.bitLinearBackward(dx, dw, dpre, go, pre, xh, wh, x, w, N, C, OC, 8, true, true);
            add(out, be, o, pre, xh, sc, wh, dx, dw);
            out.add(new float[] {alpha});

            Tensor z = be.alloc("z", N * P), zh = be.alloc("zh", N * P), lnOut = be.alloc("lnOut", N * C);
            Tensor hw = rand(be, rnd, OC * P);
            be.hBitLinearForward(o, pre, zh, sc, wh, z, lnOut, mean, rstd, x, lw, lb, hw, N, C, P, OC, 1e-5f, 8, true,
                    true);
            Tensor dz = be.alloc("dz", N * P), dln = be.alloc("dln", N * C), dhw = rand(be, rnd, OC * P);
            be.hBitLinearBackward(dx, dlw, dlb, dhw, dpre, dz, dln, go, pre, zh, wh, z, mean, rstd, x, lw, hw, N, C, P,
                    OC, 8, true, true);
            add(out, be, o, z, zh, dx, dlw, dlb, dhw);

            Tensor q = rand(be, rnd, N * NH * HS), k = rand(be, rnd, N * NKV * HS), v = rand(be, rnd, N * NKV * HS);
            Tensor att = be.alloc("att", N * NH * HS), probs = be.alloc("probs", B * NH * T * T);
            be.attentionForward(att, probs, q, k, v, null, B, T, NH, NKV, HS);
            Tensor dq = rand(be, rnd, N * NH * HS), dk = rand(be, rnd, N * NKV * HS), dv = rand(be, rnd, N * NKV * HS);
            be.attentionBackward(dq, dk, dv, be.alloc("s", T), rand(be, rnd, N * NH * HS), q, k, v, probs, null, B, T,
                    NH, NKV, HS);
            add(out, be, att, probs, dq, dk, dv);

            Tensor p = be.alloc("p", N), hid = be.alloc("hid", N * H), w1 = rand(be, rnd, H * C), b1 = rand(be, rnd, H);
            Tensor w2 = rand(be, rnd, H), b2 = rand(be, rnd, 1);
            be.routerForward(p, ln, mean, rstd, hid, x, lw, lb, w1, b1, w2, b2, N, C, H, 1e-5f);
            Tensor dw1 = rand(be, rnd, H * C), db1 = rand(be, rnd, H), dw2 = rand(be, rnd, H), db2 = rand(be, rnd, 1);
            be.routerBackward(dx, dlw, dlb, dw1, db1, dw2, db2, be.alloc("a", N), be.alloc("b", N * H),
                    be.alloc("c", N * H), be.alloc("d", N * C), rand(be, rnd, N), p, ln, mean, rstd, hid, x, lw, w1, w2,
                    N, C, H);
            add(out, be, p, hid, dx, dlw, dlb, dw1, db1, dw2, db2);

            Tensor head = rand(be, rnd, V * C), dhead = rand(be, rnd, V * C);
            Tensor logits = be.alloc("logits", 8 * V), dlogits = be.alloc("dlogits", 8 * V);
            int[] targets = new int[N];
            for (int i = 0; i < N; i++) {
                targets[i] = i == 5 ? -1 : rnd.nextInt(V);
            }
            double loss = be.headLoss(x, head, targets, N, C, V, 1.0f / N, dx, dhead, logits, dlogits, 8);
            add(out, be, dx, dhead);
            out.add(new float[] {(float) loss, (float) (loss - (float) loss)});
            double ss = be.sumSquares(dhead, V * C);
            out.add(new float[] {(float) ss, (float) (ss - (float) ss)});
        }
        return out;
    }

    private static Tensor rand(Backend be, Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        Tensor t = be.alloc("t", n);
        be.upload(t, a);
        return t;
    }

    private static void add(List<float[]> out, Backend be, Tensor... ts) {
        for (Tensor t : ts) {
            float[] a = new float[t.size()];
            be.download(t, a);
            out.add(a);
        }
    }
}
