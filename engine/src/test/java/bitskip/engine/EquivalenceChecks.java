package bitskip.engine;

import bitskip.engine.Equivalence.Case;
import bitskip.engine.Equivalence.P;
import bitskip.engine.Equivalence.Tol;
import bitskip.engine.Equivalence.Tols;
import bitskip.kernels.Rope;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The checks of the equivalence harness, one per op family: each runs the same calls on the oracle and on
 * the backend under test and compares every output, with its tolerance per target family (composed / cpu /
 * fp64 device / fp32 device). Gradients are checked as accumulated onto random non-zero values (backward
 * ops must add, not overwrite); a backward is run from the reference's saved activations on both sides, so
 * that it is compared alone.
 */
final class EquivalenceChecks {
    private EquivalenceChecks() {}

    @FunctionalInterface
    interface Check {
        void run(Case c);
    }

    static final Map<String, Check> ALL = new LinkedHashMap<>();

    // Tolerances, by the former harness that stated them: the cpu backend's (scaled by max|want|), the devices'
    // (absolute). A device with fp64 reproduces the reference exactly wherever it states EXACT.
    private static final Tol GEMM_CPU = Tol.scaled(1e-5, 1e-5);
    private static final Tol ROWS_CPU = Tol.scaled(2e-5, 1e-5);
    private static final Tols GEMM = new Tols(Tol.EXACT, GEMM_CPU, Tol.EXACT, Tol.abs(1e-4, 1e-4));
    private static final Tols ROWS_FORWARD = new Tols(Tol.EXACT, ROWS_CPU, Tol.EXACT, Tol.abs(1e-6, 1e-5));
    private static final Tols ROWS_BACKWARD = new Tols(Tol.EXACT, ROWS_CPU, Tol.EXACT, Tol.abs(1e-5, 1e-4));
    private static final Tols EXACT = Tols.EXACT;

    /** alpha: a whole-tensor mean, sequential on the cpu (bit-exact), a tree on a device. */
    private static final Tols ALPHA = new Tols(Tol.EXACT, Tol.EXACT, Tol.rel(1e-6), Tol.rel(1e-5));

    private static void check(String name, Check c) {
        ALL.put(name, c);
    }

    static {
        check("memory", EquivalenceChecks::memory);
        check("embedding", EquivalenceChecks::embedding);
        check("layernorm", EquivalenceChecks::layerNorm);
        check("gemm", EquivalenceChecks::gemm);
        check("pointwise", EquivalenceChecks::pointwise);
        check("dropout", EquivalenceChecks::dropout);
        check("select-samples", EquivalenceChecks::selectSamples);
        check("ternary", EquivalenceChecks::ternary);
        check("bitlinear", EquivalenceChecks::bitLinear);
        check("hbitlinear", EquivalenceChecks::hBitLinear);
        check("rope", EquivalenceChecks::rope);
        check("attention", EquivalenceChecks::attention);
        check("router", EquivalenceChecks::router);
        check("exit-adapter", EquivalenceChecks::exitAdapter);
        check("low-rank-head", EquivalenceChecks::lowRankHead);
        check("routing-loss", EquivalenceChecks::routingLoss);
        check("head-loss", EquivalenceChecks::headLoss);
        check("optimizer", EquivalenceChecks::optimizer);
    }

    static void memory(Case c) {
        P a = c.rand("a", 100), b = c.rand("b", 100);
        c.both(s -> s.be().copy(s.t(b), 10, s.t(a), 3, 50));
        c.same("copy(offsets)", b, EXACT);
        c.both(s -> s.be().copy(s.t(b), 5, s.t(b), 0, 60)); // overlapping, within one tensor
        c.same("copy(overlapping)", b, EXACT);
        c.both(s -> s.be().copy(s.t(b), s.t(a), 20));
        c.same("copy", b, EXACT);
        c.both(s -> s.be().copy(s.t(b).at(1), 9, s.t(a).at(2), 7, 6, 5)); // strided rows
        c.same("copy(strided)", b, EXACT);
        c.both(s -> s.be().zero(s.t(a)));
        c.same("zero", a, EXACT);
        c.require(a.dev().size() == 100, "size");
    }

    static void embedding(Case c) {
        int B = 2, T = 5, N = B * T, C = 40, V = 7, maxT = 9, pos0 = 3;
        int[] tok = new int[N];
        for (int i = 0; i < N; i++) {
            tok[i] = c.rnd.nextInt(V);
        }
        tok[3] = tok[7]; // a repeated token sums its rows
        P wte = c.rand("wte", V * C), wpe = c.rand("wpe", maxT * C), out = c.rand("out", N * C);
        P dwte = c.rand("dwte", V * C), dwpe = c.rand("dwpe", maxT * C), dout = c.rand("dout", N * C);
        c.both(s -> s.be().embeddingForward(s.t(out), tok, s.t(wte), N, C, V));
        c.same("embeddingForward", out, EXACT);
        c.both(s -> s.be().positionsForward(s.t(out), s.t(wpe), B, T, C, pos0, maxT));
        c.same("positionsForward", out, EXACT);
        c.both(s -> s.be().embeddingBackward(s.t(dwte), s.t(dout), tok, N, C, V));
        c.same("embeddingBackward", dwte, EXACT);
        c.both(s -> s.be().positionsBackward(s.t(dwpe), s.t(dout), B, T, C, pos0, maxT));
        c.same("positionsBackward", dwpe, EXACT);
    }

    static void layerNorm(Case c) {
        for (boolean affine : new boolean[] {true, false}) {
            int N = 11, C = 40;
            String cfg = affine ? "affine" : "plain";
            P inp = c.rand("inp", N * C, 2.0f), out = c.zeros("out", N * C), mean = c.zeros("mean", N);
            P rstd = c.zeros("rstd", N);
            P w = affine ? c.rand("weight", C) : null, b = affine ? c.rand("bias", C) : null;
            c.both(s -> s.be().layerNormForward(s.t(out), new NormStats(s.t(mean), s.t(rstd)), s.t(inp), s.norm(w, b), N,
                    C, 1e-5f));
            c.same("layerNormForward " + cfg, out, ROWS_FORWARD);
            c.same("layerNormForward " + cfg, mean, ROWS_FORWARD);
            c.same("layerNormForward " + cfg, rstd, ROWS_FORWARD);
            c.adopt(mean);
            c.adopt(rstd);
            P dout = c.rand("dout", N * C), dinp = c.rand("dinp", N * C);
            P dw = affine ? c.rand("dweight", C) : null, db = affine ? c.rand("dbias", C) : null;
            c.both(s -> s.be().layerNormBackward(s.t(dinp), s.norm(dw, db), s.t(dout), s.t(inp), s.norm(w, b),
                    new NormStats(s.t(mean), s.t(rstd)), N, C));
            c.same("layerNormBackward " + cfg, dinp, ROWS_BACKWARD);
            if (affine) {
                c.same("layerNormBackward " + cfg, dw, ROWS_BACKWARD);
                c.same("layerNormBackward " + cfg, db, ROWS_BACKWARD);
            }
        }
    }

    static void gemm(Case c) {
        for (boolean bias : new boolean[] {true, false}) {
            int N = 9, C = 37, OC = 23; // not multiples of a tile
            P inp = c.rand("inp", N * C), wt = c.rand("weight", OC * C), b = bias ? c.rand("bias", OC) : null;
            P out = c.rand("out", N * OC);
            c.both(s -> s.be().matmulForward(s.t(out), s.t(inp), s.t(wt), s.t(b), N, C, OC));
            c.same("linear forward", out, GEMM);
            P dout = c.rand("dout", N * OC), dinp = c.rand("dinp", N * C), dw = c.rand("dweight", OC * C);
            c.both(s -> s.be().gemm(Gemm.linearInputGrad(s.t(dinp), s.t(dout), s.t(wt), N, C, OC)));
            c.same("linear input gradient", dinp, GEMM);
            c.both(s -> s.be().gemm(Gemm.linearWeightGrad(s.t(dw), s.t(dout), s.t(inp), N, C, OC)));
            c.same("linear weight gradient", dw, GEMM);
            if (bias) {
                P db = c.rand("dbias", OC);
                c.both(s -> s.be().biasBackward(s.t(db), s.t(dout), N, OC));
                c.same("biasBackward", db, GEMM);
            }
        }
        // both operands transposed, at offsets inside larger matrices, alpha and beta: C = 0.5·AᵀBᵀ + 2·C
        int M = 6, N = 5, K = 7, lda = 9, ldb = 8, ldc = 11;
        P a = c.rand("a", 3 + K * lda), b = c.rand("b", 2 + N * ldb), cm = c.rand("c", 4 + M * ldc);
        c.both(s -> s.be().gemm(new Gemm(M, N, K, 0.5f, new Mat(s.t(a), 3, lda, true), new Mat(s.t(b), 2, ldb, true), 2.0f,
                new Mat(s.t(cm), 4, ldc, false), null)));
        c.same("gemm (transposed, offsets, alpha, beta)", cm, GEMM);
        // a long K beside a small C (the LM head's dX shape), which the cpu backend cuts along K: A transposed with
        // beta 1, then B transposed with beta 0 (C's old values must not leak in), at offsets
        int Ms = 7, Ns = 5, Ks = 8209;
        P ka = c.rand("a", 1 + Ks * Ms), kb = c.rand("b", 2 + Ks * Ns), kc = c.rand("c", 3 + Ms * Ns);
        c.both(s -> s.be().gemm(new Gemm(Ms, Ns, Ks, 0.5f, new Mat(s.t(ka), 1, Ms, true), new Mat(s.t(kb), 2, Ns, false), 1.0f,
                new Mat(s.t(kc), 3, Ns, false), null)));
        c.same("gemm split along K (A transposed, beta 1)", kc, GEMM);
        c.both(s -> s.be().gemm(new Gemm(Ms, Ns, Ks, 1.0f, new Mat(s.t(ka), 1, Ks, false), new Mat(s.t(kb), 2, Ks, true), 0.0f,
                new Mat(s.t(kc), 3, Ns, false), null)));
        c.same("gemm split along K (B transposed, beta 0)", kc, GEMM);
    }

    static void pointwise(Case c) {
        int n = 40_003; // several chunks and a vector tail
        P x = c.rand("x", n), y = c.rand("y", n), out = c.zeros("out", n), d = c.rand("d", n), g = c.rand("g", n);
        c.both(s -> s.be().relu2Forward(s.t(out), s.t(x), n));
        c.same("relu2Forward", out, EXACT);
        c.both(s -> s.be().relu2Backward(s.t(d), s.t(g), s.t(x), n));
        c.same("relu2Backward", d, EXACT);
        c.both(s -> s.be().add(s.t(out), s.t(x), s.t(y), n));
        c.same("add", out, EXACT);
        c.both(s -> s.be().accumulate(s.t(out), s.t(g), n - 5));
        c.same("accumulate", out, EXACT);
        c.both(s -> s.be().scale(s.t(out), n - 1, 0.37f));
        c.same("scale", out, EXACT);
        for (Pointwise op : new Pointwise[] {Pointwise.RELU, Pointwise.RELU_BACKWARD, Pointwise.SIGMOID,
                Pointwise.SIGMOID_BACKWARD, Pointwise.MUL, Pointwise.MUL_ADD, Pointwise.FILL, Pointwise.TERNARY}) {
            // at offsets: out from element 7, a from 3, b from 11
            int m = n - 20;
            c.both(s -> s.be().pointwise(op, s.t(d).at(7), s.t(x).at(3), s.t(y).at(11), m, 0.6f));
            // the sigmoid's exp: in double on fp64 devices and the cpu, in float in the float-only kernels
            Tols tol = op == Pointwise.SIGMOID || op == Pointwise.SIGMOID_BACKWARD
                    ? new Tols(Tol.EXACT, Tol.EXACT, Tol.EXACT, Tol.abs(1e-6, 1e-5)) : EXACT;
            c.same(op.name(), d, tol);
        }
        // clearing (FILL with +0.0: the cpu backend's memset path) at an offset, over several chunks: the elements
        // before and after the span keep their values
        c.both(s -> s.be().pointwise(Pointwise.FILL, s.t(d).at(7), null, null, n - 20, 0.0f));
        c.same("FILL 0.0 at an offset", d, EXACT);
        c.both(s -> s.be().pointwise(Pointwise.SIGMOID, s.t(d).at(0), s.t(x).at(0), null, n, 0.0f));
        c.both(s -> s.be().zero(s.t(d)));
        c.same("zero", d, EXACT);
        P w = c.rand("w", n), wHat = c.rand("wHat", n);
        c.both(s -> s.be().squaredErrorBackward(s.t(d), s.t(w), s.t(wHat), n, 0.3f));
        c.same("squaredErrorBackward", d, new Tols(Tol.EXACT, Tol.scaled(1e-7, 1e-6), Tol.EXACT, Tol.EXACT));
    }

    static void dropout(Case c) {
        int n = 40_003;
        P mask = c.zeros("mask", n), x = c.rand("x", n), out = c.zeros("out", n), d = c.rand("d", n), g = c.rand("g", n);
        c.both(s -> s.be().dropoutMask(s.t(mask), n, 0.1f, 1234L, 77L));
        c.same("dropoutMask", mask, EXACT);
        // p·2^24 an integer (the boundary case of the cpu backend's integer-to-float comparison), a negative seed, an
        // offset past 2^32
        P half = c.zeros("mask", n);
        c.both(s -> s.be().dropoutMask(s.t(half), n, 0.5f, -987_654_321L, (1L << 40) + 3));
        c.same("dropoutMask (p = 0.5)", half, EXACT);
        c.both(s -> s.be().dropoutForward(s.t(out), s.t(x), s.t(mask), n));
        c.same("dropoutForward", out, EXACT);
        c.both(s -> s.be().dropoutBackward(s.t(d), s.t(g), s.t(mask), n));
        c.same("dropoutBackward", d, EXACT);
    }

    static void selectSamples(Case c) {
        int B = 3, T = 4, C = 20, n = B * T * C;
        int[] skip = {0, 1, 0};
        P comp = c.rand("computed", n), skp = c.rand("skipped", n), out = c.rand("out", n);
        c.both(s -> s.be().selectSamples(s.t(out), s.t(comp), s.t(skp), skip, B, T, C));
        c.same("selectSamples", out, EXACT);
        P dc = c.rand("dcomputed", n), ds = c.rand("dskipped", n), dout = c.rand("dout", n);
        c.both(s -> s.be().selectSamplesBackward(s.t(dc), s.t(ds), s.t(dout), skip, B, T, C));
        c.same("selectSamplesBackward", dc, EXACT);
        c.same("selectSamplesBackward", ds, EXACT);
    }

    static void ternary(Case c) {
        int n = 50_001; // long enough for several partial sums
        float[] wv = c.uniform(n, 1.0f);
        P w = c.of("w", wv), wHat = c.rand("wHat", n);
        double[] alpha = c.values(s -> s.be().ternary(s.t(wHat), s.t(w), n));
        c.same("ternary alpha", alpha, ALPHA);
        // Ŵ must be the reference's codes for this backend's alpha, exactly
        float ad = (float) alpha[1], thr = 0.5f * ad;
        float[] got = c.download(c.dev, wHat.dev());
        for (int i = 0; i < n; i++) {
            float want = ad * (wv[i] > thr ? 1.0f : wv[i] < -thr ? -1.0f : 0.0f);
            c.require(got[i] == want, "ternary wHat[" + i + "] = " + got[i] + ", want " + want + " for alpha " + ad);
        }
        if (alpha[0] == alpha[1]) {
            c.same("ternary wHat", wHat, EXACT);
        }
        // a weight exactly at the threshold becomes 0 on both
        P edge = c.of("edge", new float[] {1.0f, -1.0f, 0.5f, -0.5f, 0.0f, 2.0f, -0.25f, 0.5f}), eh = c.zeros("edgeHat", 8);
        c.same("ternary alpha (edge)", c.values(s -> s.be().ternary(s.t(eh), s.t(edge), 8)), ALPHA);
        c.same("ternary edge", eh, EXACT);
        c.adopt(wHat);
        c.same("squaredError", c.values(s -> s.be().squaredError(s.t(w), s.t(wHat), n)),
                new Tols(Tol.EXACT, Tol.rel(1e-12), Tol.rel(1e-6), Tol.rel(1e-5)));
    }

    static void bitLinear(Case c) {
        int[][] shapes = c.device() ? new int[][] {{7, 20, 11}} : new int[][] {{9, 40, 24}, {33, 128, 96}};
        for (int[] sh : shapes) {
            for (int actBits : new int[] {8, 4, 0}) {
                for (boolean ternary : new boolean[] {true, false}) {
                    for (boolean relu2 : new boolean[] {true, false}) {
                        bitLinearCase(c, sh[0], sh[1], sh[2], QuantLinear.bitLinear(sh[1], sh[2], actBits, ternary, relu2));
                    }
                }
            }
        }
    }

    private static void bitLinearCase(Case c, int N, int C, int OC, QuantLinear q) {
        String cfg = String.format(" N%d C%d OC%d bits%d ternary=%b relu2=%b", N, C, OC, q.actBits(), q.ternary(), q.relu2());
        P inp = c.rand("inp", N * C, 3.0f), wt = c.rand("weight", OC * C, 0.1f);
        P out = c.zeros("out", N * OC), pre = c.zeros("preact", N * OC), xh = c.zeros("xHat", N * C);
        P sc = c.zeros("actScale", N), wh = c.zeros("wHat", OC * C);
        double[] alpha = c.values(s -> s.be().bitLinearForward(q, N, LinearParams.bitLinear(s.t(wt)),
                new LinearActs(s.t(inp), s.t(out), s.t(pre), s.t(xh), s.t(sc), s.t(wh), null, null, null)));
        c.same("bitLinearForward alpha" + cfg, alpha, ALPHA);
        boolean sameAlpha = alpha[0] == alpha[1];
        Tols fwd = new Tols(Tol.EXACT, GEMM_CPU, sameAlpha ? Tol.EXACT : Tol.abs(1e-5, 1e-5), Tol.abs(1e-5, 1e-5));
        Tols bwd = new Tols(Tol.EXACT, GEMM_CPU, sameAlpha ? Tol.EXACT : Tol.abs(1e-4, 1e-4), Tol.abs(1e-4, 1e-4));
        if (q.ternary() && sameAlpha) {
            c.same("bitLinearForward" + cfg, wh, EXACT);
        }
        if (q.actBits() != 0) {
            c.same("bitLinearForward" + cfg, xh, EXACT);
            c.same("bitLinearForward" + cfg, sc, EXACT);
        }
        c.same("bitLinearForward" + cfg, out, fwd);
        if (q.relu2()) {
            c.same("bitLinearForward" + cfg, pre, fwd);
        }
        for (P saved : new P[] {pre, xh, wh}) {
            c.adopt(saved);
        }
        P dout = c.rand("dout", N * OC), dinp = c.rand("dinp", N * C), dw = c.rand("dweight", OC * C);
        P dpre = c.zeros("dpreact", N * OC);
        c.both(s -> s.be().bitLinearBackward(q, N, LinearParams.bitLinear(s.t(wt)),
                new LinearActs(s.t(inp), s.t(out), s.t(pre), s.t(xh), s.t(sc), s.t(wh), null, null, null), s.t(dout),
                s.t(dinp), LinearParams.bitLinear(s.t(dw)), new LinearScratch(s.t(dpre), null, null)));
        c.same("bitLinearBackward" + cfg, dinp, bwd);
        c.same("bitLinearBackward" + cfg, dw, bwd);
    }

    static void hBitLinear(Case c) {
        int[][] shapes = c.device() ? new int[][] {{6, 24, 9}} : new int[][] {{7, 40, 24}, {12, 128, 64}};
        for (int[] sh : shapes) {
            for (boolean relu2 : new boolean[] {true, false}) {
                int N = sh[0], C = sh[1], OC = sh[2];
                QuantLinear q = QuantLinear.hadamard(C, OC, 1e-5f, 8, true, relu2);
                int P = q.padded();
                String cfg = String.format(" N%d C%d P%d OC%d relu2=%b", N, C, P, OC, relu2);
                P inp = c.rand("inp", N * C, 2.0f), lw = c.rand("lnWeight", C), lb = c.rand("lnBias", C, 0.1f);
                P wt = c.rand("weight", OC * P, 0.1f);
                P out = c.zeros("out", N * OC), pre = c.zeros("preact", N * OC), zh = c.zeros("zHat", N * P);
                P sc = c.zeros("actScale", N), wh = c.zeros("wHat", OC * P), z = c.zeros("z", N * P);
                P lnOut = c.zeros("lnOut", N * C), lm = c.zeros("lnMean", N), lr = c.zeros("lnRstd", N);
                java.util.function.Function<Equivalence.Side, LinearActs> acts = s -> new LinearActs(s.t(inp), s.t(out),
                        s.t(pre), s.t(zh), s.t(sc), s.t(wh), s.t(z), s.t(lnOut), new NormStats(s.t(lm), s.t(lr)));
                double[] alpha = c.values(s -> s.be().hBitLinearForward(q, N, new LinearParams(s.t(wt), s.norm(lw, lb)),
                        acts.apply(s)));
                c.same("hBitLinearForward alpha" + cfg, alpha, ALPHA);
                boolean sameAlpha = alpha[0] == alpha[1];
                Tol dev = Tol.abs(1e-4, 1e-4);
                if (sameAlpha) {
                    c.same("hBitLinearForward" + cfg, wh, EXACT);
                }
                c.same("hBitLinearForward" + cfg, z, new Tols(Tol.EXACT, ROWS_CPU, Tol.EXACT, Tol.abs(1e-5, 1e-5)));
                // a code may flip at a rounding tie
                c.same("hBitLinearForward" + cfg, zh, new Tols(Tol.EXACT, Tol.scaled(2e-2 / 127, 1e-5),
                        sameAlpha ? Tol.EXACT : dev, dev));
                c.same("hBitLinearForward" + cfg, out, new Tols(Tol.EXACT, Tol.scaled(2e-2, 1e-4),
                        sameAlpha ? Tol.EXACT : dev, dev));
                for (P saved : new P[] {pre, zh, wh, z, lm, lr}) {
                    c.adopt(saved);
                }
                P dout = c.rand("dout", N * OC), dinp = c.rand("dinp", N * C), dlw = c.rand("dlnWeight", C);
                P dlb = c.rand("dlnBias", C), dw = c.rand("dweight", OC * P), dpre = c.zeros("dpreact", N * OC);
                P dz = c.zeros("dz", N * P), dln = c.zeros("dlnOut", N * C);
                c.both(s -> s.be().hBitLinearBackward(q, N, new LinearParams(s.t(wt), s.norm(lw, lb)), acts.apply(s),
                        s.t(dout), s.t(dinp), new LinearParams(s.t(dw), s.norm(dlw, dlb)),
                        new LinearScratch(s.t(dpre), s.t(dz), s.t(dln))));
                Tol devB = Tol.abs(1e-3, 1e-3);
                Tols rows = new Tols(Tol.EXACT, ROWS_CPU, Tol.EXACT, devB);
                c.same("hBitLinearBackward" + cfg, dinp, rows);
                c.same("hBitLinearBackward" + cfg, dlw, rows);
                c.same("hBitLinearBackward" + cfg, dlb, rows);
                c.same("hBitLinearBackward" + cfg, dw, new Tols(Tol.EXACT, GEMM_CPU, Tol.EXACT, devB));
            }
        }
    }

    static void rope(Case c) {
        int B = 2, T = 5, NH = 3, HS = 40, maxT = 16, pos0 = 4, n = B * T * NH * HS;
        Heads h = new Heads(B, T, NH, HS);
        float[] cos = new float[maxT * HS / 2], sin = new float[maxT * HS / 2];
        Rope.table(cos, sin, maxT, HS, 10000.0f);
        P cs = c.of("cos", cos), sn = c.of("sin", sin), x = c.rand("x", n), out = c.zeros("out", n);
        c.both(s -> s.be().rope(s.t(out), s.t(x), s.t(cs), s.t(sn), h, pos0, false));
        c.same("rope", out, EXACT);
        c.both(s -> s.be().rope(s.t(x), s.t(x), s.t(cs), s.t(sn), h, pos0, false));
        c.same("rope (in place)", x, EXACT);
        P dx = c.rand("dinp", n), dy = c.rand("dout", n);
        c.both(s -> s.be().rope(s.t(dx), s.t(dy), s.t(cs), s.t(sn), h, pos0, true));
        c.same("rope backward", dx, EXACT);
    }

    static void attention(Case c) {
        for (boolean drop : new boolean[] {false, true}) {
            AttentionShape sh = c.device() ? new AttentionShape(2, 6, 4, 2, 8) : new AttentionShape(2, 21, 4, 2, 20);
            String cfg = drop ? " dropout" : "";
            int nq = (int) sh.queries().size(), nkv = (int) sh.keys().size(), np = sh.B() * sh.NH() * sh.T() * sh.T();
            P q = c.rand("q", nq, 2.0f), k = c.rand("k", nkv, 2.0f), v = c.rand("v", nkv);
            P out = c.rand("out", nq), probs = c.rand("probs", np), work = c.zeros("work", sh.workSize());
            P mask = drop ? c.zeros("mask", np) : null;
            if (drop) {
                c.both(s -> s.be().dropoutMask(s.t(mask), np, 0.2f, 9L, 0L));
            }
            java.util.function.Function<Equivalence.Side, AttentionActs> acts = s -> new AttentionActs(s.t(q), s.t(k),
                    s.t(v), s.t(probs), s.t(mask), s.t(out));
            c.both(s -> s.be().attentionForward(sh, acts.apply(s), s.t(work)));
            c.same("attentionForward" + cfg, probs, new Tols(Tol.EXACT, Tol.scaled(2e-6, 1e-5), Tol.EXACT, Tol.abs(1e-6, 1e-5)));
            c.same("attentionForward" + cfg, out, ROWS_FORWARD);
            c.adopt(probs);
            P dq = c.rand("dq", nq), dk = c.rand("dk", nkv), dv = c.rand("dv", nkv), dout = c.rand("dout", nq);
            c.both(s -> s.be().attentionBackward(sh, acts.apply(s), s.t(dout), s.t(dq), s.t(dk), s.t(dv), s.t(work)));
            // composed: per-head GEMMs sum each gradient before adding it; the kernel adds term by term
            Tols bwd = new Tols(ROWS_CPU, ROWS_CPU, Tol.EXACT, Tol.abs(1e-5, 1e-4));
            c.same("attentionBackward" + cfg, dq, bwd);
            c.same("attentionBackward" + cfg, dk, bwd);
            c.same("attentionBackward" + cfg, dv, bwd);
        }
    }

    static void router(Case c) {
        int N = 13, C = 40, H = 10;
        RouterShape r = new RouterShape(C, H, 1e-5f);
        P h = c.rand("h", N * C, 2.0f), lw = c.rand("lnWeight", C), lb = c.rand("lnBias", C, 0.1f);
        P w1 = c.rand("w1", H * C, 0.3f), b1 = c.rand("b1", H, 0.1f), w2 = c.rand("w2", H), b2 = c.rand("b2", 1);
        P p = c.zeros("p", N), ln = c.zeros("ln", N * C), lm = c.zeros("lnMean", N), lr = c.zeros("lnRstd", N);
        P hid = c.zeros("hidden", N * H);
        java.util.function.Function<Equivalence.Side, RouterParams> params = s -> new RouterParams(s.norm(lw, lb), s.t(w1),
                s.t(b1), s.t(w2), s.t(b2));
        java.util.function.Function<Equivalence.Side, RouterActs> acts = s -> new RouterActs(s.t(h), s.t(ln),
                new NormStats(s.t(lm), s.t(lr)), s.t(hid), s.t(p));
        c.both(s -> s.be().routerForward(r, N, params.apply(s), acts.apply(s)));
        c.same("routerForward", p, ROWS_FORWARD);
        c.same("routerForward", hid, ROWS_FORWARD);
        for (P saved : new P[] {p, ln, lm, lr, hid}) {
            c.adopt(saved);
        }
        P dh = c.rand("dh", N * C), dlw = c.rand("dlnWeight", C), dlb = c.rand("dlnBias", C);
        P dw1 = c.rand("dw1", H * C), db1 = c.rand("db1", H), dw2 = c.rand("dw2", H), db2 = c.rand("db2", 1);
        P s1 = c.zeros("dlogit", N), s2 = c.zeros("dhidden", N * H), s3 = c.zeros("dpre", N * H), s4 = c.zeros("dln", N * C);
        P dp = c.rand("dp", N);
        c.both(s -> s.be().routerBackward(r, N, params.apply(s), acts.apply(s), s.t(dp), s.t(dh),
                new RouterParams(s.norm(dlw, dlb), s.t(dw1), s.t(db1), s.t(dw2), s.t(db2)),
                new RouterScratch(s.t(s1), s.t(s2), s.t(s3), s.t(s4))));
        Tols bwd = new Tols(Tol.EXACT, Tol.scaled(5e-5, 1e-4), Tol.EXACT, Tol.abs(1e-5, 1e-4));
        for (P g : new P[] {dh, dlw, dlb, dw1, db1, dw2, db2}) {
            c.same("routerBackward", g, bwd);
        }
    }

    static void exitAdapter(Case c) {
        int N = 13, C = 40;
        P h = c.rand("h", N * C, 2.0f), lw = c.rand("lnWeight", C), lb = c.rand("lnBias", C, 0.1f);
        P w = c.rand("w", C * C, 0.3f);
        P out = c.zeros("out", N * C), ln = c.zeros("ln", N * C), lm = c.zeros("lnMean", N), lr = c.zeros("lnRstd", N);
        java.util.function.Function<Equivalence.Side, AdapterActs> acts = s -> new AdapterActs(s.t(h), s.t(ln),
                new NormStats(s.t(lm), s.t(lr)), s.t(out));
        c.both(s -> s.be().exitAdapterForward(N, C, 1e-5f, new AdapterParams(s.norm(lw, lb), s.t(w)), acts.apply(s)));
        c.same("exitAdapterForward", out, ROWS_FORWARD);
        for (P saved : new P[] {out, ln, lm, lr}) {
            c.adopt(saved);
        }
        P dh = c.rand("dh", N * C), dlw = c.rand("dlnWeight", C), dlb = c.rand("dlnBias", C), dw = c.rand("dw", C * C);
        P dln = c.zeros("dln", N * C), dout = c.rand("dout", N * C);
        c.both(s -> s.be().exitAdapterBackward(N, C, new AdapterParams(s.norm(lw, lb), s.t(w)), acts.apply(s), s.t(dout),
                s.t(dh), new AdapterParams(s.norm(dlw, dlb), s.t(dw)), s.t(dln)));
        Tols bwd = new Tols(Tol.EXACT, Tol.scaled(5e-5, 1e-4), Tol.EXACT, Tol.abs(1e-5, 1e-4));
        for (P g : new P[] {dh, dlw, dlb, dw}) {
            c.same("exitAdapterBackward", g, bwd);
        }
    }

    static void lowRankHead(Case c) {
        int V = 67, C = 40, r = 5;
        P w = c.rand("w", V * C), up = c.rand("up", V * r, 0.5f), down = c.rand("down", r * C, 0.5f);
        P out = c.zeros("out", V * C);
        c.both(s -> s.be().lowRankHeadForward(s.t(out), s.t(w), s.t(up), s.t(down), V, C, r));
        c.same("lowRankHeadForward", out, GEMM);
        P dup = c.rand("dup", V * r), ddown = c.rand("ddown", r * C), dout = c.rand("dout", V * C);
        c.both(s -> s.be().lowRankHeadBackward(s.t(dup), s.t(ddown), s.t(dout), s.t(up), s.t(down), V, C, r));
        c.same("lowRankHeadBackward", dup, GEMM);
        c.same("lowRankHeadBackward", ddown, GEMM);
    }

    static void routingLoss(Case c) {
        for (boolean batchMean : new boolean[] {false, true}) {
            int L = 6, N = 700;
            String cfg = batchMean ? " batch-mean" : " per-token";
            float[] pe = new float[L * N];
            for (int i = 0; i < pe.length; i++) {
                pe[i] = c.rnd.nextFloat();
            }
            P p = c.of("pExit", pe), lbar = c.zeros("lbar", N), dp = c.rand("dpExit", L * N);
            c.same("routingLossForward" + cfg, c.values(s -> s.be().routingLossForward(s.t(lbar), s.t(p), L, N, 2.5f,
                    batchMean)), EXACT);
            c.same("routingLossForward" + cfg, lbar, EXACT);
            c.both(s -> s.be().routingLossBackward(s.t(dp), s.t(p), s.t(lbar), L, N, 2.5f, batchMean, 0.7f));
            c.same("routingLossBackward" + cfg, dp, EXACT);
        }
    }

    static void headLoss(Case c) {
        headCase(c, 11, 12, 301, 4, false, false);
        headCase(c, 11, 12, 301, 4, true, true); // the last chunk partial
        headCase(c, 5, 40, 60, 2, true, false); // dx wanted, the head's gradient not
        if (!c.device()) {
            headCase(c, 7, 40, 50, 3, true, true);
            headCase(c, 7, 128, 1000, 3, true, true);
            headCase(c, 9, 128, 1003, 16, true, true);
            headCase(c, 7, 128, 1000, 4, false, false);
        }
    }

    private static void headCase(Case c, int N, int C, int V, int chunkRows, boolean grad, boolean headGrad) {
        String cfg = String.format(" N%d C%d V%d chunk%d grad=%b", N, C, V, chunkRows, grad);
        P x = c.rand("x", N * C), head = c.rand("head", V * C, 0.5f);
        int[] targets = new int[N];
        for (int i = 0; i < N; i++) {
            targets[i] = c.rnd.nextInt(V);
        }
        targets[2] = -1;
        P dx = grad ? c.rand("dx", N * C) : null, dhead = grad && headGrad ? c.rand("dhead", V * C) : null;
        P logits = c.zeros("logits", Math.min(chunkRows, N) * V);
        double[] loss = c.values(s -> s.be().headLoss(new LmHead(s.t(head), s.t(dhead), C, V, s.t(logits), chunkRows), s.t(x),
                targets, N, 0.25f, s.t(dx)));
        c.same("headLoss loss" + cfg, loss, new Tols(Tol.rel(1e-12), Tol.rel(1e-6), Tol.rel(1e-6), Tol.rel(1e-5)));
        Tols g = new Tols(Tol.EXACT, GEMM_CPU, Tol.abs(1e-6, 1e-5), Tol.abs(1e-6, 1e-5));
        if (grad) {
            c.same("headLoss" + cfg, dx, g);
            if (headGrad) {
                c.same("headLoss" + cfg, dhead, g);
            }
        }
    }

    static void optimizer(Case c) {
        int n = 30_011;
        P g = c.rand("grad", n, 0.01f);
        c.same("sumSquares", c.values(s -> s.be().sumSquares(s.t(g), n)),
                new Tols(Tol.EXACT, Tol.rel(1e-12), Tol.rel(1e-6), Tol.rel(1e-5)));
        P p = c.rand("param", n), m = c.rand("m", n, 0.01f), v = c.of("v", new float[n]);
        for (int step = 1; step <= 3; step++) {
            for (float beta1 : new float[] {0.9f, 0.3f}) { // both lerp branches
                AdamStep a = new AdamStep(1e-3f, beta1, 0.95f, 1e-8f, 0.1f, step);
                c.both(s -> s.be().adamW(s.t(p), s.t(g), s.t(m), s.t(v), n, a));
            }
        }
        c.same("adamW", p, EXACT);
        c.same("adamW", m, EXACT);
        c.same("adamW", v, EXACT);
    }
}
