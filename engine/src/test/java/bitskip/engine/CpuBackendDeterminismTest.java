package bitskip.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.cpu.CpuBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
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

    /**
     * A product the cpu backend cuts along K (the LM head's dX shape; CpuLinearTest checks that it is): the parts are
     * a function of K, so one and two threads give the same bits, as for products cut into blocks of C.
     */
    @Test
    void productSplitAlongKGivesTheSameBitsOnOneAndTwoThreads() {
        int M = 24, N = 40, K = 3 * 4096 + 77;
        float[][] results = new float[2][];
        for (int threads = 1; threads <= 2; threads++) {
            try (CpuBackend be = new CpuBackend(threads, true)) {
                Random rnd = new Random(7);
                Tensor g = rand(be, rnd, M * K), w = rand(be, rnd, K * N), dx = rand(be, rnd, M * N);
                be.gemm(new Gemm(M, N, K, 0.25f, Mat.of(g, K), Mat.of(w, N), 1.0f, Mat.of(dx, N), null));
                results[threads - 1] = new float[M * N];
                be.download(dx, results[threads - 1]);
            }
        }
        for (int j = 0; j < M * N; j++) {
            if (Float.floatToRawIntBits(results[0][j]) != Float.floatToRawIntBits(results[1][j])) {
                assertArrayEquals(results[0], results[1], "1 and 2 threads differ at [" + j + "]");
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
            Norm norm = new Norm(lw, lb);
            NormStats stats = new NormStats(mean, rstd);
            be.layerNormForward(ln, stats, x, norm, N, C, 1e-5f);
            Tensor dx = rand(be, rnd, N * C), dlw = rand(be, rnd, C), dlb = rand(be, rnd, C);
            Tensor g = rand(be, rnd, N * C);
            be.layerNormBackward(dx, new Norm(dlw, dlb), g, x, norm, stats, N, C);
            add(out, be, ln, mean, rstd, dx, dlw, dlb);

            Tensor w = rand(be, rnd, OC * C), o = be.alloc("o", N * OC), pre = be.alloc("pre", N * OC);
            Tensor xh = be.alloc("xh", N * C), sc = be.alloc("sc", N), wh = be.alloc("wh", OC * C);
            QuantLinear bl = QuantLinear.bitLinear(C, OC, 8, true, true);
            LinearActs acts = new LinearActs(x, o, pre, xh, sc, wh, null, null, null);
            float alpha = be.bitLinearForward(bl, N, LinearParams.bitLinear(w), acts);
            Tensor dw = rand(be, rnd, OC * C), dpre = be.alloc("dpre", N * OC), go = rand(be, rnd, N * OC);
            Tensor dz = be.alloc("dz", N * P), dln = be.alloc("dln", N * C);
            LinearScratch scratch = new LinearScratch(dpre, dz, dln);
            be.bitLinearBackward(bl, N, LinearParams.bitLinear(w), acts, go, dx, LinearParams.bitLinear(dw), scratch);
            add(out, be, o, pre, xh, sc, wh, dx, dw);
            out.add(new float[] {alpha});

            Tensor z = be.alloc("z", N * P), zh = be.alloc("zh", N * P), lnOut = be.alloc("lnOut", N * C);
            Tensor hw = rand(be, rnd, OC * P);
            QuantLinear hl = QuantLinear.hadamard(C, OC, 1e-5f, 8, true, true);
            LinearActs hacts = new LinearActs(x, o, pre, zh, sc, wh, z, lnOut, stats);
            be.hBitLinearForward(hl, N, new LinearParams(hw, norm), hacts);
            Tensor dhw = rand(be, rnd, OC * P);
            be.hBitLinearBackward(hl, N, new LinearParams(hw, norm), hacts, go, dx, new LinearParams(dhw, new Norm(dlw, dlb)),
                    scratch);
            add(out, be, o, z, zh, dx, dlw, dlb, dhw);

            Tensor q = rand(be, rnd, N * NH * HS), k = rand(be, rnd, N * NKV * HS), v = rand(be, rnd, N * NKV * HS);
            Tensor att = be.alloc("att", N * NH * HS), probs = be.alloc("probs", B * NH * T * T);
            AttentionShape shape = new AttentionShape(B, T, NH, NKV, HS);
            AttentionActs aa = new AttentionActs(q, k, v, probs, null, att);
            Tensor work = be.alloc("work", shape.workSize());
            be.attentionForward(shape, aa, work);
            Tensor dq = rand(be, rnd, N * NH * HS), dk = rand(be, rnd, N * NKV * HS), dv = rand(be, rnd, N * NKV * HS);
            be.attentionBackward(shape, aa, rand(be, rnd, N * NH * HS), dq, dk, dv, work);
            add(out, be, att, probs, dq, dk, dv);

            Tensor p = be.alloc("p", N), hid = be.alloc("hid", N * H), w1 = rand(be, rnd, H * C), b1 = rand(be, rnd, H);
            Tensor w2 = rand(be, rnd, H), b2 = rand(be, rnd, 1);
            RouterShape rs = new RouterShape(C, H, 1e-5f);
            RouterParams rp = new RouterParams(norm, w1, b1, w2, b2);
            RouterActs ra = new RouterActs(x, ln, stats, hid, p);
            be.routerForward(rs, N, rp, ra);
            Tensor dw1 = rand(be, rnd, H * C), db1 = rand(be, rnd, H), dw2 = rand(be, rnd, H), db2 = rand(be, rnd, 1);
            be.routerBackward(rs, N, rp, ra, rand(be, rnd, N), dx, new RouterParams(new Norm(dlw, dlb), dw1, db1, dw2, db2),
                    new RouterScratch(be.alloc("a", N), be.alloc("b", N * H), be.alloc("c", N * H), be.alloc("d", N * C)));
            add(out, be, p, hid, dx, dlw, dlb, dw1, db1, dw2, db2);

            Tensor head = rand(be, rnd, V * C), dhead = rand(be, rnd, V * C);
            Tensor logits = be.alloc("logits", 8 * V);
            int[] targets = new int[N];
            for (int i = 0; i < N; i++) {
                targets[i] = i == 5 ? -1 : rnd.nextInt(V);
            }
            double loss = be.headLoss(new LmHead(head, dhead, C, V, logits, 8), x, targets, N, 1.0f / N, dx);
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
