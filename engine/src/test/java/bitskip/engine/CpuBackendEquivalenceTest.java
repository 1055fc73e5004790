package bitskip.engine;

import static bitskip.engine.Twins.c;
import static bitskip.engine.Twins.r;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.Twins.T;
import bitskip.engine.cpu.CpuBackend;
import bitskip.kernels.Rope;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every Backend op on random inputs, on {@link JavaBackend} (the reference) and on {@link CpuBackend} with the
 * Vector API on and off, 1 and 2 threads. Tolerances, per op (|cpu − ref| <= rtol·|ref| + atol·max|ref|):
 * <ul>
 *   <li>exact: quantizer outputs (alpha, Ŵ, codes, per-token scales, x̂), pointwise ops, dropout, selection,
 *       embeddings, rope, adamW, routing loss (same operations in the same order);</li>
 *   <li>GEMM-based ops (matmul, BitLinear, router): rtol 1e-5, atol 1e-5 (OpenBLAS sums in another order,
 *       with FMA); H-BitLinear and LayerNorm: rtol 1e-5, atol 2e-5 (vector sums of the row statistics);</li>
 *   <li>attention: rtol 1e-5, atol 2e-5 (float exp lanes, vector dots); headLoss: loss rtol 1e-6, gradients
 *       rtol 1e-5, atol 1e-5;</li>
 *   <li>double reductions (sumSquares, squaredError): rtol 1e-12 (another summation order).</li>
 * </ul>
 * Gradients are checked as accumulated onto random non-zero values (backward ops must add, not overwrite).
 */
class CpuBackendEquivalenceTest {

    static final double GEMM_R = 1e-5, GEMM_A = 1e-5;

    /** Per test (not @BeforeAll), so that each test is reported as skipped, with the reason, without OpenBLAS. */
    @BeforeEach
    void requireOpenBlas() {
        Requirements.skipOrFail("cpu", CpuBackend.unavailableReason()).ifPresent(r -> abort("cpu backend tests skipped: " + r));
    }

    static Stream<Arguments> configs() {
        return Stream.of(Arguments.of(1, true), Arguments.of(2, true), Arguments.of(1, false), Arguments.of(2, false));
    }

    private static String cfg(int threads, boolean vector) {
        return "[" + threads + " thread(s), " + (vector ? "vector" : "scalar") + "]";
    }

    @ParameterizedTest
    @MethodSource("configs")
    void memoryOps(int threads, boolean vector) {
        try (Twins w = new Twins(threads, vector, 1)) {
            String c = cfg(threads, vector);
            T a = w.rand("a", 100), b = w.rand("b", 100);
            w.ref.copy(b.r, 10, a.r, 3, 50);
            w.cpu.copy(b.c, 10, a.c, 3, 50);
            w.exact(c + " copy(offsets)", b);
            w.ref.copy(b.r, 5, b.r, 0, 60); // overlapping, within one tensor
            w.cpu.copy(b.c, 5, b.c, 0, 60);
            w.exact(c + " copy(overlapping)", b);
            w.ref.copy(b.r, a.r, 20);
            w.cpu.copy(b.c, a.c, 20);
            w.exact(c + " copy", b);
            w.ref.zero(a.r);
            w.cpu.zero(a.c);
            w.exact(c + " zero", a);
            assertEquals(100, a.c.size());
            assertEquals("cpu", w.cpu.name());
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void embeddings(int threads, boolean vector) {
        try (Twins w = new Twins(threads, vector, 2)) {
            String c = cfg(threads, vector);
            int B = 2, T = 5, N = B * T, C = 40, V = 7, maxT = 9, pos0 = 3;
            int[] tok = new int[N];
            for (int i = 0; i < N; i++) {
                tok[i] = w.rnd.nextInt(V);
            }
            tok[3] = tok[7]; // a repeated token sums its rows
            T wte = w.rand("wte", V * C), wpe = w.rand("wpe", maxT * C), out = w.rand("out", N * C);
            T dwte = w.rand("dwte", V * C), dwpe = w.rand("dwpe", maxT * C), dout = w.rand("dout", N * C);
            w.ref.embeddingForward(out.r, tok, wte.r, N, C, V);
            w.cpu.embeddingForward(out.c, tok, wte.c, N, C, V);
            w.exact(c + " embeddingForward", out);
            w.ref.positionsForward(out.r, wpe.r, B, T, C, pos0, maxT);
            w.cpu.positionsForward(out.c, wpe.c, B, T, C, pos0, maxT);
            w.exact(c + " positionsForward", out);
            w.ref.embeddingBackward(dwte.r, dout.r, tok, N, C, V);
            w.cpu.embeddingBackward(dwte.c, dout.c, tok, N, C, V);
            w.exact(c + " embeddingBackward", dwte);
            w.ref.positionsBackward(dwpe.r, dout.r, B, T, C, pos0, maxT);
            w.cpu.positionsBackward(dwpe.c, dout.c, B, T, C, pos0, maxT);
            w.exact(c + " positionsBackward", dwpe);
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void layerNorm(int threads, boolean vector) {
        for (boolean affine : new boolean[] {true, false}) {
            try (Twins w = new Twins(threads, vector, 3)) {
                String c = cfg(threads, vector) + (affine ? " affine" : " plain");
                int N = 11, C = 40;
                T inp = w.rand("inp", N * C, 2.0f), out = w.zeros("out", N * C);
                T mean = w.zeros("mean", N), rstd = w.zeros("rstd", N);
                T wt = affine ? w.rand("weight", C) : null, bs = affine ? w.rand("bias", C) : null;
                w.ref.layerNormForward(out.r, mean.r, rstd.r, inp.r, r(wt), r(bs), N, C, 1e-5f);
                w.cpu.layerNormForward(out.c, mean.c, rstd.c, inp.c, c(wt), c(bs), N, C, 1e-5f);
                w.close(c + " layerNormForward", out, 1e-5, 2e-5);
                w.close(c + " layerNormForward", mean, 1e-5, 2e-5);
                w.close(c + " layerNormForward", rstd, 1e-5, 2e-5);
                T dout = w.rand("dout", N * C), dinp = w.rand("dinp", N * C);
                T dw = affine ? w.rand("dweight", C) : null, db = affine ? w.rand("dbias", C) : null;
                w.ref.layerNormBackward(dinp.r, r(dw), r(db), dout.r, inp.r, r(wt), mean.r, rstd.r, N, C);
                w.cpu.layerNormBackward(dinp.c, c(dw), c(db), dout.c, inp.c, c(wt), mean.c, rstd.c, N, C);
                w.close(c + " layerNormBackward", dinp, 1e-5, 2e-5);
                if (affine) {
                    w.close(c + " layerNormBackward", dw, 1e-5, 2e-5);
                    w.close(c + " layerNormBackward", db, 1e-5, 2e-5);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void matmul(int threads, boolean vector) {
        for (boolean bias : new boolean[] {true, false}) {
            try (Twins w = new Twins(threads, vector, 4)) {
                String c = cfg(threads, vector) + (bias ? " bias" : " no bias");
                int N = 9, C = 37, OC = 23;
                T inp = w.rand("inp", N * C), wt = w.rand("weight", OC * C), b = bias ? w.rand("bias", OC) : null;
                T out = w.rand("out", N * OC);
                w.ref.matmulForward(out.r, inp.r, wt.r, r(b), N, C, OC);
                w.cpu.matmulForward(out.c, inp.c, wt.c, c(b), N, C, OC);
                w.close(c + " matmulForward", out, GEMM_R, GEMM_A);
                T dout = w.rand("dout", N * OC), dinp = w.rand("dinp", N * C), dw = w.rand("dweight", OC * C);
                T db = bias ? w.rand("dbias", OC) : null;
                w.ref.matmulBackward(dinp.r, dw.r, r(db), dout.r, inp.r, wt.r, N, C, OC);
                w.cpu.matmulBackward(dinp.c, dw.c, c(db), dout.c, inp.c, wt.c, N, C, OC);
                w.close(c + " matmulBackward", dinp, GEMM_R, GEMM_A);
                w.close(c + " matmulBackward", dw, GEMM_R, GEMM_A);
                if (bias) {
                    w.close(c + " matmulBackward", db, GEMM_R, GEMM_A);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void pointwiseAndDropout(int threads, boolean vector) {
        try (Twins w = new Twins(threads, vector, 5)) {
            String c = cfg(threads, vector);
            int n = 40_003; // several parts and a vector tail
            T x = w.rand("x", n), y = w.rand("y", n), out = w.zeros("out", n), d = w.rand("d", n), g = w.rand("g", n);
            w.ref.relu2Forward(out.r, x.r, n);
            w.cpu.relu2Forward(out.c, x.c, n);
            w.exact(c + " relu2Forward", out);
            w.ref.relu2Backward(d.r, g.r, x.r, n);
            w.cpu.relu2Backward(d.c, g.c, x.c, n);
            w.exact(c + " relu2Backward", d);
            w.ref.add(out.r, x.r, y.r, n);
            w.cpu.add(out.c, x.c, y.c, n);
            w.exact(c + " add", out);
            w.ref.accumulate(out.r, g.r, n - 5);
            w.cpu.accumulate(out.c, g.c, n - 5);
            w.exact(c + " accumulate", out);
            w.ref.scale(out.r, n - 1, 0.37f);
            w.cpu.scale(out.c, n - 1, 0.37f);
            w.exact(c + " scale", out);
            T mask = w.zeros("mask", n);
            w.ref.dropoutMask(mask.r, n, 0.1f, 1234L, 77L);
            w.cpu.dropoutMask(mask.c, n, 0.1f, 1234L, 77L);
            w.exact(c + " dropoutMask", mask);
            w.ref.dropoutForward(out.r, x.r, mask.r, n);
            w.cpu.dropoutForward(out.c, x.c, mask.c, n);
            w.exact(c + " dropoutForward", out);
            w.ref.dropoutBackward(d.r, g.r, mask.r, n);
            w.cpu.dropoutBackward(d.c, g.c, mask.c, n);
            w.exact(c + " dropoutBackward", d);
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void selectSamples(int threads, boolean vector) {
        try (Twins w = new Twins(threads, vector, 6)) {
            String c = cfg(threads, vector);
            int B = 3, T = 4, C = 20, n = B * T * C;
            int[] skip = {0, 1, 0};
            T comp = w.rand("computed", n), skp = w.rand("skipped", n), out = w.rand("out", n);
            w.ref.selectSamples(out.r, comp.r, skp.r, skip, B, T, C);
            w.cpu.selectSamples(out.c, comp.c, skp.c, skip, B, T, C);
            w.exact(c + " selectSamples", out);
            T dc = w.rand("dcomputed", n), ds = w.rand("dskipped", n), dout = w.rand("dout", n);
            w.ref.selectSamplesBackward(dc.r, ds.r, dout.r, skip, B, T, C);
            w.cpu.selectSamplesBackward(dc.c, ds.c, dout.c, skip, B, T, C);
            w.exact(c + " selectSamplesBackward", dc);
            w.exact(c + " selectSamplesBackward", ds);
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void quantizers(int threads, boolean vector) {
        try (Twins w = new Twins(threads, vector, 7)) {
            String c = cfg(threads, vector);
            int n = 50_001;
            T wt = w.rand("w", n), wh = w.rand("wHat", n);
            byte[] codesR = new byte[n], codesC = new byte[n];
            float aR = w.ref.ternaryForward(wh.r, codesR, wt.r, n);
            float aC = w.cpu.ternaryForward(wh.c, codesC, wt.c, n);
            assertEquals(Float.floatToIntBits(aR), Float.floatToIntBits(aC), c + " ternary alpha");
            assertArrayEquals(codesR, codesC, c + " ternary codes");
            w.exact(c + " ternaryForward", wh);
            T wh2 = w.rand("wHat(no codes)", n);
            aR = w.ref.ternaryForward(wh2.r, null, wt.r, n);
            aC = w.cpu.ternaryForward(wh2.c, null, wt.c, n);
            assertEquals(Float.floatToIntBits(aR), Float.floatToIntBits(aC), c + " ternary alpha (no codes)");
            w.exact(c + " ternaryForward", wh2);
            // a weight exactly at the threshold becomes 0 on both
            T edge = w.of("edge", new float[] {1.0f, -1.0f, 0.5f, -0.5f, 0.0f, 2.0f, -0.25f, 0.5f});
            T eh = w.zeros("edgeHat", 8);
            assertEquals(w.ref.ternaryForward(eh.r, null, edge.r, 8), w.cpu.ternaryForward(eh.c, null, edge.c, 8));
            w.exact(c + " ternary edge", eh);
            Twins.closeScalar(c + " squaredError", w.ref.squaredError(wt.r, wh.r, n), w.cpu.squaredError(wt.c, wh.c, n),
                    1e-12);
            T dw = w.rand("dw", n);
            w.ref.squaredErrorBackward(dw.r, wt.r, wh.r, n, 0.3f);
            w.cpu.squaredErrorBackward(dw.c, wt.c, wh.c, n, 0.3f);
            w.close(c + " squaredErrorBackward", dw, 1e-6, 1e-7); // scale·2 folded into one constant on the vector path
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void bitLinear(int threads, boolean vector) {
        int[][] shapes = {{9, 40, 24}, {33, 128, 96}};
        for (int[] sh : shapes) {
            for (int actBits : new int[] {8, 4, 0}) {
                for (boolean ternary : new boolean[] {true, false}) {
                    for (boolean relu2 : new boolean[] {true, false}) {
                        bitLinearCase(threads, vector, sh[0], sh[1], sh[2], actBits, ternary, relu2);
                    }
                }
            }
        }
    }

    private void bitLinearCase(int threads, boolean vector, int N, int C, int OC, int actBits, boolean ternary,
                               boolean relu2) {
        try (Twins w = new Twins(threads, vector, 8)) {
            String c = cfg(threads, vector) + String.format(" N%d C%d OC%d bits%d ternary=%b relu2=%b", N, C, OC, actBits,
                    ternary, relu2);
            T inp = w.rand("inp", N * C, 3.0f), wt = w.rand("weight", OC * C, 0.1f);
            T out = w.zeros("out", N * OC), pre = w.zeros("preact", N * OC), xh = w.zeros("xHat", N * C);
            T sc = w.zeros("actScale", N), wh = w.zeros("wHat", OC * C);
            float aR = w.ref.bitLinearForward(out.r, pre.r, xh.r, sc.r, wh.r, inp.r, wt.r, N, C, OC, actBits, ternary, relu2);
            float aC = w.cpu.bitLinearForward(out.c, pre.c, xh.c, sc.c, wh.c, inp.c, wt.c, N, C, OC, actBits, ternary, relu2);
            assertEquals(Float.floatToIntBits(aR), Float.floatToIntBits(aC), c + " alpha");
            if (ternary) {
                w.exact(c + " bitLinearForward", wh);
            }
            if (actBits != 0) {
                w.exact(c + " bitLinearForward", xh);
                w.exact(c + " bitLinearForward", sc);
            }
            w.close(c + " bitLinearForward", out, GEMM_R, GEMM_A);
            if (relu2) {
                w.close(c + " bitLinearForward", pre, GEMM_R, GEMM_A);
            }
            T dout = w.rand("dout", N * OC), dinp = w.rand("dinp", N * C), dw = w.rand("dweight", OC * C);
            T dpre = w.zeros("dpreact", N * OC);
            w.ref.bitLinearBackward(dinp.r, dw.r, dpre.r, dout.r, pre.r, xh.r, wh.r, inp.r, wt.r, N, C, OC, actBits,
                    ternary, relu2);
            w.cpu.bitLinearBackward(dinp.c, dw.c, dpre.c, dout.c, pre.c, xh.c, wh.c, inp.c, wt.c, N, C, OC, actBits,
                    ternary, relu2);
            w.close(c + " bitLinearBackward", dinp, GEMM_R, GEMM_A);
            w.close(c + " bitLinearBackward", dw, GEMM_R, GEMM_A);
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void hBitLinear(int threads, boolean vector) {
        int[][] shapes = {{7, 40, 64, 24}, {12, 128, 128, 64}};
        for (int[] sh : shapes) {
            for (boolean relu2 : new boolean[] {true, false}) {
                try (Twins w = new Twins(threads, vector, 9)) {
                    int N = sh[0], C = sh[1], P = sh[2], OC = sh[3], bits = 8;
                    String c = cfg(threads, vector) + String.format(" N%d C%d P%d OC%d relu2=%b", N, C, P, OC, relu2);
                    T inp = w.rand("inp", N * C, 2.0f), lw = w.rand("lnWeight", C), lb = w.rand("lnBias", C, 0.1f);
                    T wt = w.rand("weight", OC * P, 0.1f);
                    T out = w.zeros("out", N * OC), pre = w.zeros("preact", N * OC), zh = w.zeros("zHat", N * P);
                    T sc = w.zeros("actScale", N), wh = w.zeros("wHat", OC * P), z = w.zeros("z", N * P);
                    T lnOut = w.zeros("lnOut", N * C), lm = w.zeros("lnMean", N), lr = w.zeros("lnRstd", N);
                    float aR = w.ref.hBitLinearForward(out.r, pre.r, zh.r, sc.r, wh.r, z.r, lnOut.r, lm.r, lr.r, inp.r,
                            lw.r, lb.r, wt.r, N, C, P, OC, 1e-5f, bits, true, relu2);
                    float aC = w.cpu.hBitLinearForward(out.c, pre.c, zh.c, sc.c, wh.c, z.c, lnOut.c, lm.c, lr.c, inp.c,
                            lw.c, lb.c, wt.c, N, C, P, OC, 1e-5f, bits, true, relu2);
                    assertEquals(Float.floatToIntBits(aR), Float.floatToIntBits(aC), c + " alpha");
                    w.exact(c + " hBitLinearForward", wh);
                    w.close(c + " hBitLinearForward", z, 1e-5, 2e-5);
                    w.close(c + " hBitLinearForward", zh, 1e-5, 2e-2 / 127); // a code may flip at a rounding tie
                    w.close(c + " hBitLinearForward", out, 1e-4, 2e-2);
                    T dout = w.rand("dout", N * OC), dinp = w.rand("dinp", N * C), dlw = w.rand("dlnWeight", C);
                    T dlb = w.rand("dlnBias", C), dw = w.rand("dweight", OC * P), dpre = w.zeros("dpreact", N * OC);
                    T dz = w.zeros("dz", N * P), dln = w.zeros("dlnOut", N * C);
                    // backward from the reference's saved activations on both, so only the backward is compared
                    for (T saved : new T[] {pre, zh, z, lm, lr}) {
                        w.cpu.upload(saved.c, saved.ref());
                    }
                    w.ref.hBitLinearBackward(dinp.r, dlw.r, dlb.r, dw.r, dpre.r, dz.r, dln.r, dout.r, pre.r, zh.r, wh.r,
                            z.r, lm.r, lr.r, inp.r, lw.r, wt.r, N, C, P, OC, bits, true, relu2);
                    w.cpu.hBitLinearBackward(dinp.c, dlw.c, dlb.c, dw.c, dpre.c, dz.c, dln.c, dout.c, pre.c, zh.c, wh.c,
                            z.c, lm.c, lr.c, inp.c, lw.c, wt.c, N, C, P, OC, bits, true, relu2);
                    w.close(c + " hBitLinearBackward", dinp, 1e-5, 2e-5);
                    w.close(c + " hBitLinearBackward", dlw, 1e-5, 2e-5);
                    w.close(c + " hBitLinearBackward", dlb, 1e-5, 2e-5);
                    w.close(c + " hBitLinearBackward", dw, GEMM_R, GEMM_A);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void rope(int threads, boolean vector) {
        try (Twins w = new Twins(threads, vector, 10)) {
            String c = cfg(threads, vector);
            int B = 2, T = 5, NH = 3, HS = 40, maxT = 16, pos0 = 4, n = B * T * NH * HS;
            float[] cos = new float[maxT * HS / 2], sin = new float[maxT * HS / 2];
            Rope.table(cos, sin, maxT, HS, 10000.0f);
            T cs = w.of("cos", cos), sn = w.of("sin", sin), x = w.rand("x", n), out = w.zeros("out", n);
            w.ref.ropeForward(out.r, x.r, cs.r, sn.r, B, T, NH, HS, pos0);
            w.cpu.ropeForward(out.c, x.c, cs.c, sn.c, B, T, NH, HS, pos0);
            w.exact(c + " ropeForward", out);
            w.ref.ropeForward(x.r, x.r, cs.r, sn.r, B, T, NH, HS, pos0);
            w.cpu.ropeForward(x.c, x.c, cs.c, sn.c, B, T, NH, HS, pos0);
            w.exact(c + " ropeForward (in place)", x);
            T dx = w.rand("dinp", n), dy = w.rand("dout", n);
            w.ref.ropeBackward(dx.r, dy.r, cs.r, sn.r, B, T, NH, HS, pos0);
            w.cpu.ropeBackward(dx.c, dy.c, cs.c, sn.c, B, T, NH, HS, pos0);
            w.exact(c + " ropeBackward", dx);
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void attention(int threads, boolean vector) {
        for (boolean drop : new boolean[] {false, true}) {
            try (Twins w = new Twins(threads, vector, 11)) {
                String c = cfg(threads, vector) + (drop ? " dropout" : "");
                int B = 2, T = 21, NH = 4, NKV = 2, HS = 20;
                int nq = B * T * NH * HS, nkv = B * T * NKV * HS, np = B * NH * T * T;
                T q = w.rand("q", nq, 2.0f), k = w.rand("k", nkv, 2.0f), v = w.rand("v", nkv);
                T out = w.rand("out", nq), probs = w.rand("probs", np);
                T mask = null;
                if (drop) {
                    mask = w.zeros("mask", np);
                    w.ref.dropoutMask(mask.r, np, 0.2f, 9L, 0L);
                    w.cpu.dropoutMask(mask.c, np, 0.2f, 9L, 0L);
                }
                w.ref.attentionForward(out.r, probs.r, q.r, k.r, v.r, r(mask), B, T, NH, NKV, HS);
                w.cpu.attentionForward(out.c, probs.c, q.c, k.c, v.c, c(mask), B, T, NH, NKV, HS);
                w.close(c + " attentionForward", probs, 1e-5, 2e-6);
                w.close(c + " attentionForward", out, 1e-5, 2e-5);
                T dq = w.rand("dq", nq), dk = w.rand("dk", nkv), dv = w.rand("dv", nkv), dout = w.rand("dout", nq);
                T scratch = w.zeros("scratch", T);
                w.cpu.upload(probs.c, probs.ref()); // compare the backward alone
                w.ref.attentionBackward(dq.r, dk.r, dv.r, scratch.r, dout.r, q.r, k.r, v.r, probs.r, r(mask), B, T, NH,
                        NKV, HS);
                w.cpu.attentionBackward(dq.c, dk.c, dv.c, scratch.c, dout.c, q.c, k.c, v.c, probs.c, c(mask), B, T, NH,
                        NKV, HS);
                w.close(c + " attentionBackward", dq, 1e-5, 2e-5);
                w.close(c + " attentionBackward", dk, 1e-5, 2e-5);
                w.close(c + " attentionBackward", dv, 1e-5, 2e-5);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void router(int threads, boolean vector) {
        try (Twins w = new Twins(threads, vector, 12)) {
            String c = cfg(threads, vector);
            int N = 13, C = 40, H = 10;
            T h = w.rand("h", N * C, 2.0f), lw = w.rand("lnWeight", C), lb = w.rand("lnBias", C, 0.1f);
            T w1 = w.rand("w1", H * C, 0.3f), b1 = w.rand("b1", H, 0.1f), w2 = w.rand("w2", H), b2 = w.rand("b2", 1);
            T p = w.zeros("p", N), ln = w.zeros("ln", N * C), lm = w.zeros("lnMean", N), lr = w.zeros("lnRstd", N);
            T hid = w.zeros("hidden", N * H);
            w.ref.routerForward(p.r, ln.r, lm.r, lr.r, hid.r, h.r, lw.r, lb.r, w1.r, b1.r, w2.r, b2.r, N, C, H, 1e-5f);
            w.cpu.routerForward(p.c, ln.c, lm.c, lr.c, hid.c, h.c, lw.c, lb.c, w1.c, b1.c, w2.c, b2.c, N, C, H, 1e-5f);
            w.close(c + " routerForward", p, 1e-5, 2e-5);
            w.close(c + " routerForward", hid, 1e-5, 2e-5);
            T dh = w.rand("dh", N * C), dlw = w.rand("dlnWeight", C), dlb = w.rand("dlnBias", C);
            T dw1 = w.rand("dw1", H * C), db1 = w.rand("db1", H), dw2 = w.rand("dw2", H), db2 = w.rand("db2", 1);
            T dlogit = w.zeros("dlogit", N), dhid = w.zeros("dhidden", N * H), dpre = w.zeros("dpre", N * H);
            T dln = w.zeros("dln", N * C), dp = w.rand("dp", N);
            w.ref.routerBackward(dh.r, dlw.r, dlb.r, dw1.r, db1.r, dw2.r, db2.r, dlogit.r, dhid.r, dpre.r, dln.r, dp.r,
                    p.r, ln.r, lm.r, lr.r, hid.r, h.r, lw.r, w1.r, w2.r, N, C, H);
            w.cpu.routerBackward(dh.c, dlw.c, dlb.c, dw1.c, db1.c, dw2.c, db2.c, dlogit.c, dhid.c, dpre.c, dln.c, dp.c,
                    p.c, ln.c, lm.c, lr.c, hid.c, h.c, lw.c, w1.c, w2.c, N, C, H);
            for (T g : new T[] {dh, dlw, dlb, dw1, db1, dw2, db2}) {
                w.close(c + " routerBackward", g, 1e-4, 5e-5);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void routingLoss(int threads, boolean vector) {
        for (boolean batchMean : new boolean[] {false, true}) {
            try (Twins w = new Twins(threads, vector, 13)) {
                String c = cfg(threads, vector) + (batchMean ? " batch-mean" : " per-token");
                int L = 6, N = 700;
                float[] pe = new float[L * N];
                for (int i = 0; i < pe.length; i++) {
                    pe[i] = w.rnd.nextFloat();
                }
                T p = w.of("pExit", pe), lbar = w.zeros("lbar", N), dp = w.rand("dpExit", L * N);
                double lR = w.ref.routingLossForward(lbar.r, p.r, L, N, 2.5f, batchMean);
                double lC = w.cpu.routingLossForward(lbar.c, p.c, L, N, 2.5f, batchMean);
                assertEquals(lR, lC, c + " routingLossForward");
                w.exact(c + " routingLossForward", lbar);
                w.ref.routingLossBackward(dp.r, p.r, lbar.r, L, N, 2.5f, batchMean, 0.7f);
                w.cpu.routingLossBackward(dp.c, p.c, lbar.c, L, N, 2.5f, batchMean, 0.7f);
                w.exact(c + " routingLossBackward", dp);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void headLoss(int threads, boolean vector) {
        headCase(threads, vector, 7, 40, 50, 3, true);
        headCase(threads, vector, 7, 128, 1000, 3, true);
        headCase(threads, vector, 9, 128, 1003, 16, true);
        headCase(threads, vector, 7, 128, 1000, 4, false);
        headCase(threads, vector, 5, 40, 60, 2, true, false); // dx wanted, dhead not
    }

    private void headCase(int threads, boolean vector, int N, int C, int V, int chunkRows, boolean grad) {
        headCase(threads, vector, N, C, V, chunkRows, grad, true);
    }

    private void headCase(int threads, boolean vector, int N, int C, int V, int chunkRows, boolean grad,
                          boolean headGrad) {
        try (Twins w = new Twins(threads, vector, 14)) {
            String c = cfg(threads, vector) + String.format(" N%d C%d V%d chunk%d grad=%b", N, C, V, chunkRows, grad);
            T x = w.rand("x", N * C), head = w.rand("head", V * C, 0.5f);
            int[] targets = new int[N];
            for (int i = 0; i < N; i++) {
                targets[i] = w.rnd.nextInt(V);
            }
            targets[2] = -1;
            T dx = grad ? w.rand("dx", N * C) : null, dhead = grad && headGrad ? w.rand("dhead", V * C) : null;
            int scratch = Math.min(chunkRows, N) * V;
            T logits = w.zeros("logits", scratch), dlogits = w.zeros("dlogits", scratch);
            double lR = w.ref.headLoss(x.r, head.r, targets, N, C, V, 0.25f, r(dx), r(dhead), logits.r, dlogits.r,
                    chunkRows);
            double lC = w.cpu.headLoss(x.c, head.c, targets, N, C, V, 0.25f, c(dx), c(dhead), logits.c, dlogits.c,
                    chunkRows);
            Twins.closeScalar(c + " headLoss loss", lR, lC, 1e-6);
            if (grad) {
                w.close(c + " headLoss", dx, GEMM_R, GEMM_A);
                if (headGrad) {
                    w.close(c + " headLoss", dhead, GEMM_R, GEMM_A);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("configs")
    void optimizer(int threads, boolean vector) {
        try (Twins w = new Twins(threads, vector, 15)) {
            String c = cfg(threads, vector);
            int n = 30_011;
            T g = w.rand("grad", n, 0.01f);
            Twins.closeScalar(c + " sumSquares", w.ref.sumSquares(g.r, n), w.cpu.sumSquares(g.c, n), 1e-12);
            T p = w.rand("param", n), m = w.rand("m", n, 0.01f), v = w.of("v", new float[n]);
            for (int step = 1; step <= 3; step++) {
                for (float beta1 : new float[] {0.9f, 0.3f}) { // both lerp branches
                    w.ref.adamW(p.r, g.r, m.r, v.r, n, 1e-3f, beta1, 0.95f, 1e-8f, 0.1f, step);
                    w.cpu.adamW(p.c, g.c, m.c, v.c, n, 1e-3f, beta1, 0.95f, 1e-8f, 0.1f, step);
                }
            }
            w.exact(c + " adamW", p);
            w.exact(c + " adamW", m);
            w.exact(c + " adamW", v);
        }
    }
}
