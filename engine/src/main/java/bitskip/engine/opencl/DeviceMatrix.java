package bitskip.engine.opencl;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.engine.JavaBackend;
import bitskip.engine.Tensor;
import bitskip.kernels.Quantize;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;

/**
 * The kernel equivalence suite run on every backend and device present, with {@link JavaBackend} as the
 * oracle: every Backend op on small random inputs, compared element by element within a per-op tolerance
 * (the worst element is reported). Runs from JUnit ({@code OpenCLEquivalenceTest}) and as a plain main
 * (the GPU bundle has no JUnit): {@code java -cp ... bitskip.engine.opencl.DeviceMatrix}.
 *
 * <p>Tolerances: {@code EXACT} ops must agree bit for bit on a device with fp64 (same operation order,
 * FP_CONTRACT off, correctly rounded / and sqrt, the reference's double expressions in double); without
 * fp64 the few ops that call exp/log in double in the reference get {@code ULP} tolerances. Reductions over
 * whole tensors run in a fixed tree order instead of the reference's sequential one: relative 1e-6
 * (fp64) or 1e-5 (double-float), and alpha's codes are compared exactly against the reference's codes
 * computed with the device's alpha.
 */
public final class DeviceMatrix {
    /** A backend under test: a label and how to open it (null opener = skipped, with the reason). */
    public record Target(String label, Supplier<Backend> open, String skipReason, boolean exactFloat) {}

    /** Thrown by a check that cannot run on a target. */
    public static final class Skip extends RuntimeException {
        public Skip(String why) {
            super(why);
        }
    }

    @FunctionalInterface
    public interface Check {
        void run(Backend ref, Backend dev, Target target);
    }

    public static final Map<String, Check> CHECKS = new LinkedHashMap<>();

    /** Every backend registered in Backends except java, then every OpenCL device (fp64 and float-only). */
    public static List<Target> targets() {
        List<Target> out = new ArrayList<>();
        out.add(new Target("java", JavaBackend::new, null, true));
        for (String name : Backends.names()) {
            if (name.equals("tornado")) {
                String why = Backends.tornadoUnavailableReason();
                // exact: its kernels round as the reference on fp64 devices (engine-tornado's README)
                out.add(new Target(name, why == null ? () -> Backends.create(name) : null, why, true));
            } else if (!name.equals("java") && !name.equals("opencl")) {
                out.add(new Target(name, () -> Backends.create(name), null, false));
            }
        }
        List<OpenCLDevices.Device> devs = OpenCLDevices.list();
        if (devs.isEmpty()) {
            out.add(new Target("opencl", null, OpenCLDevices.unavailableReason(), false));
        }
        for (OpenCLDevices.Device d : devs) {
            String base = "opencl " + d.id();
            if (d.fp64()) {
                out.add(new Target(base + " fp64", () -> new OpenCLBackend(d, true), null, true));
            }
            out.add(new Target(base + " fp32", () -> new OpenCLBackend(d, false), null, false));
        }
        return out;
    }

    static String shortName(OpenCLDevices.Device d) {
        String n = d.name().replaceAll("\\s+", " ");
        return n.length() > 24 ? n.substring(0, 24) : n;
    }

    // ---- comparison helpers --------------------------------------------------------------------------

    private static final ThreadLocal<Random> RNG = ThreadLocal.withInitial(() -> new Random(1));

    static float[] randn(int n, float std) {
        Random r = RNG.get();
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * std);
        }
        return a;
    }

    static float[] uniform(int n, float lo, float hi) {
        Random r = RNG.get();
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = lo + (hi - lo) * r.nextFloat();
        }
        return a;
    }

    /** The same data on both backends. */
    record P(Tensor ref, Tensor dev) {}

    static P pair(Backend ref, Backend dev, String name, float[] data) {
        Tensor a = ref.alloc(name, data.length), b = dev.alloc(name, data.length);
        ref.upload(a, data);
        dev.upload(b, data);
        return new P(a, b);
    }

    static P zeros(Backend ref, Backend dev, String name, int n) {
        return new P(ref.alloc(name, n), dev.alloc(name, n));
    }

    static Tensor r(P p) {
        return p == null ? null : p.ref;
    }

    static Tensor d(P p) {
        return p == null ? null : p.dev;
    }

    /** Relative-plus-absolute tolerance: |got − want| <= atol + rtol·|want|; (0, 0) = bit for bit. */
    record Tol(double atol, double rtol) {
        static final Tol EXACT = new Tol(0, 0);
    }

    static void same(Backend ref, Backend dev, P p, Tol tol, String what) {
        float[] a = new float[p.ref.size()], b = new float[p.dev.size()];
        ref.download(p.ref, a);
        dev.download(p.dev, b);
        compare(a, b, tol, what);
    }

    static void compare(float[] want, float[] got, Tol tol, String what) {
        int worst = -1;
        double worstExcess = 0;
        int bad = 0;
        for (int i = 0; i < want.length; i++) {
            double diff = Math.abs((double) got[i] - want[i]);
            boolean ok = tol.atol == 0 && tol.rtol == 0 ? Float.floatToIntBits(got[i]) == Float.floatToIntBits(want[i])
                    || (got[i] == 0 && want[i] == 0)
                    : diff <= tol.atol + tol.rtol * Math.abs(want[i]);
            if (!(got[i] == got[i]) && want[i] == want[i]) {
                ok = false;
            }
            double excess = diff - (tol.atol + tol.rtol * Math.abs(want[i]));
            if (!ok) {
                bad++;
                if (worst < 0 || excess > worstExcess || Double.isNaN(diff)) {
                    worst = i;
                    worstExcess = excess;
                }
            }
        }
        if (worst >= 0) {
            throw new AssertionError(String.format(Locale.ROOT,
                    "%s: %d of %d elements off (atol %.1e, rtol %.1e); worst [%d] want %.9g got %.9g (diff %.3e)",
                    what, bad, want.length, tol.atol, tol.rtol, worst, want[worst], got[worst],
                    Math.abs((double) got[worst] - want[worst])));
        }
    }

    static void close(double want, double got, double rtol, String what) {
        if (!(Math.abs(got - want) <= rtol * Math.max(1e-30, Math.abs(want)))) {
            throw new AssertionError(String.format(Locale.ROOT, "%s: want %.17g got %.17g (rel %.3e, tolerance %.1e)",
                    what, want, got, Math.abs(got - want) / Math.abs(want), rtol));
        }
    }

    /** Tolerance of an op that is bit-exact on an exact target and within ulps otherwise. */
    static Tol t(Target tg, double atol, double rtol) {
        return tg.exactFloat() ? Tol.EXACT : new Tol(atol, rtol);
    }

    static double redTol(Target tg) {
        return tg.label().equals("java") ? 0 : tg.exactFloat() ? 1e-6 : 1e-5;
    }

    // ---- the checks: one per op or pair of ops ---------------------------------------------------------

    static {
        CHECKS.put("memory", (ref, dev, tg) -> {
            P a = pair(ref, dev, "a", randn(37, 1));
            P b = zeros(ref, dev, "b", 50);
            ref.copy(b.ref, a.ref, 20);
            dev.copy(b.dev, a.dev, 20);
            ref.copy(b.ref, 25, a.ref, 10, 12);
            dev.copy(b.dev, 25, a.dev, 10, 12);
            ref.copy(a.ref, 3, a.ref, 0, 20); // overlapping, same tensor
            dev.copy(a.dev, 3, a.dev, 0, 20);
            same(ref, dev, b, Tol.EXACT, "copy");
            same(ref, dev, a, Tol.EXACT, "copy within a tensor");
            ref.zero(a.ref);
            dev.zero(a.dev);
            same(ref, dev, a, Tol.EXACT, "zero");
        });
        CHECKS.put("embedding", (ref, dev, tg) -> {
            int N = 12, C = 10, V = 7, B = 3, T = 4, maxT = 6;
            int[] tok = new int[N];
            for (int i = 0; i < N; i++) {
                tok[i] = (i * 5) % V; // repeated ids: the scatter-add must sum them
            }
            P wte = pair(ref, dev, "wte", randn(V * C, 1));
            P wpe = pair(ref, dev, "wpe", randn(maxT * C, 1));
            P out = zeros(ref, dev, "out", N * C);
            ref.embeddingForward(out.ref, tok, wte.ref, N, C, V);
            dev.embeddingForward(out.dev, tok, wte.dev, N, C, V);
            ref.positionsForward(out.ref, wpe.ref, B, T, C, 2, maxT);
            dev.positionsForward(out.dev, wpe.dev, B, T, C, 2, maxT);
            same(ref, dev, out, Tol.EXACT, "embedding+positions forward");
            P dout = pair(ref, dev, "dout", randn(N * C, 1));
            P dwte = pair(ref, dev, "dwte", randn(V * C, 1));
            P dwpe = pair(ref, dev, "dwpe", randn(maxT * C, 1));
            ref.embeddingBackward(dwte.ref, dout.ref, tok, N, C, V);
            dev.embeddingBackward(dwte.dev, dout.dev, tok, N, C, V);
            ref.positionsBackward(dwpe.ref, dout.ref, B, T, C, 2, maxT);
            dev.positionsBackward(dwpe.dev, dout.dev, B, T, C, 2, maxT);
            same(ref, dev, dwte, Tol.EXACT, "embedding backward");
            same(ref, dev, dwpe, Tol.EXACT, "positions backward");
        });
        CHECKS.put("layernorm", (ref, dev, tg) -> {
            int N = 9, C = 24;
            for (boolean params : new boolean[] {true, false}) {
                P inp = pair(ref, dev, "inp", randn(N * C, 2));
                P w = params ? pair(ref, dev, "w", uniform(C, 0.5f, 1.5f)) : null;
                P b = params ? pair(ref, dev, "b", randn(C, 0.1f)) : null;
                P out = zeros(ref, dev, "out", N * C), mean = zeros(ref, dev, "mean", N), rstd = zeros(ref, dev, "rstd", N);
                ref.layerNormForward(out.ref, mean.ref, rstd.ref, inp.ref, r(w), r(b), N, C, 1e-5f);
                dev.layerNormForward(out.dev, mean.dev, rstd.dev, inp.dev, d(w), d(b), N, C, 1e-5f);
                Tol tol = t(tg, 1e-6, 1e-5);
                same(ref, dev, out, tol, "layernorm out");
                same(ref, dev, mean, tol, "layernorm mean");
                same(ref, dev, rstd, tol, "layernorm rstd");
                P dout = pair(ref, dev, "dout", randn(N * C, 1));
                P dinp = pair(ref, dev, "dinp", randn(N * C, 1));
                P dw = params ? pair(ref, dev, "dw", randn(C, 1)) : null;
                P db = params ? pair(ref, dev, "db", randn(C, 1)) : null;
                ref.layerNormBackward(dinp.ref, r(dw), r(db), dout.ref, inp.ref, r(w), mean.ref, rstd.ref, N, C);
                dev.layerNormBackward(dinp.dev, d(dw), d(db), dout.dev, inp.dev, d(w), mean.dev, rstd.dev, N, C);
                Tol tb = t(tg, 1e-5, 1e-4);
                same(ref, dev, dinp, tb, "layernorm dinp");
                if (params) {
                    same(ref, dev, dw, tb, "layernorm dweight");
                    same(ref, dev, db, tb, "layernorm dbias");
                }
            }
        });
        CHECKS.put("matmul", (ref, dev, tg) -> {
            int N = 19, C = 37, OC = 21; // not multiples of the tile
            for (boolean bias : new boolean[] {true, false}) {
                P inp = pair(ref, dev, "inp", randn(N * C, 1));
                P w = pair(ref, dev, "w", randn(OC * C, 1));
                P b = bias ? pair(ref, dev, "b", randn(OC, 1)) : null;
                P out = zeros(ref, dev, "out", N * OC);
                ref.matmulForward(out.ref, inp.ref, w.ref, r(b), N, C, OC);
                dev.matmulForward(out.dev, inp.dev, w.dev, d(b), N, C, OC);
                Tol tol = t(tg, 1e-4, 1e-4);
                same(ref, dev, out, tol, "matmul forward");
                P dout = pair(ref, dev, "dout", randn(N * OC, 1));
                P dinp = pair(ref, dev, "dinp", randn(N * C, 1));
                P dw = pair(ref, dev, "dw", randn(OC * C, 1));
                P db = bias ? pair(ref, dev, "db", randn(OC, 1)) : null;
                ref.matmulBackward(dinp.ref, dw.ref, r(db), dout.ref, inp.ref, w.ref, N, C, OC);
                dev.matmulBackward(dinp.dev, dw.dev, d(db), dout.dev, inp.dev, w.dev, N, C, OC);
                same(ref, dev, dinp, tol, "matmul dinp");
                same(ref, dev, dw, tol, "matmul dweight");
                if (bias) {
                    same(ref, dev, db, tol, "matmul dbias");
                }
            }
        });
        CHECKS.put("pointwise", (ref, dev, tg) -> {
            int n = 101;
            P a = pair(ref, dev, "a", randn(n, 1)), b = pair(ref, dev, "b", randn(n, 1));
            P out = zeros(ref, dev, "out", n), dinp = pair(ref, dev, "dinp", randn(n, 1));
            ref.relu2Forward(out.ref, a.ref, n);
            dev.relu2Forward(out.dev, a.dev, n);
            same(ref, dev, out, Tol.EXACT, "relu2 forward");
            ref.relu2Backward(dinp.ref, b.ref, a.ref, n);
            dev.relu2Backward(dinp.dev, b.dev, a.dev, n);
            same(ref, dev, dinp, Tol.EXACT, "relu2 backward");
            ref.add(out.ref, a.ref, b.ref, n);
            dev.add(out.dev, a.dev, b.dev, n);
            same(ref, dev, out, Tol.EXACT, "add");
            ref.accumulate(out.ref, a.ref, n);
            dev.accumulate(out.dev, a.dev, n);
            ref.scale(out.ref, n, 0.37f);
            dev.scale(out.dev, n, 0.37f);
            same(ref, dev, out, Tol.EXACT, "accumulate, scale");
        });
        CHECKS.put("dropout", (ref, dev, tg) -> {
            int n = 333;
            P mask = zeros(ref, dev, "mask", n);
            ref.dropoutMask(mask.ref, n, 0.3f, 0x1234_5678_9abcL, 1000L);
            dev.dropoutMask(mask.dev, n, 0.3f, 0x1234_5678_9abcL, 1000L);
            same(ref, dev, mask, Tol.EXACT, "dropout mask");
            P a = pair(ref, dev, "a", randn(n, 1)), out = zeros(ref, dev, "out", n);
            P dinp = pair(ref, dev, "dinp", randn(n, 1));
            ref.dropoutForward(out.ref, a.ref, mask.ref, n);
            dev.dropoutForward(out.dev, a.dev, mask.dev, n);
            same(ref, dev, out, Tol.EXACT, "dropout forward");
            ref.dropoutBackward(dinp.ref, a.ref, mask.ref, n);
            dev.dropoutBackward(dinp.dev, a.dev, mask.dev, n);
            same(ref, dev, dinp, Tol.EXACT, "dropout backward");
        });
        CHECKS.put("select-samples", (ref, dev, tg) -> {
            int B = 3, T = 4, C = 5, n = B * T * C;
            int[] skip = {0, 1, 0};
            P c = pair(ref, dev, "c", randn(n, 1)), s = pair(ref, dev, "s", randn(n, 1)), out = zeros(ref, dev, "o", n);
            ref.selectSamples(out.ref, c.ref, s.ref, skip, B, T, C);
            dev.selectSamples(out.dev, c.dev, s.dev, skip, B, T, C);
            same(ref, dev, out, Tol.EXACT, "selectSamples");
            P dc = pair(ref, dev, "dc", randn(n, 1)), ds = pair(ref, dev, "ds", randn(n, 1));
            ref.selectSamplesBackward(dc.ref, ds.ref, c.ref, skip, B, T, C);
            dev.selectSamplesBackward(dc.dev, ds.dev, c.dev, skip, B, T, C);
            same(ref, dev, dc, Tol.EXACT, "selectSamplesBackward dcomputed");
            same(ref, dev, ds, Tol.EXACT, "selectSamplesBackward dskipped");
        });
        CHECKS.put("ternary", (ref, dev, tg) -> {
            int n = 50_000; // long enough for several partial sums
            float[] wv = randn(n, 0.02f);
            P w = pair(ref, dev, "w", wv), wHat = zeros(ref, dev, "wHat", n);
            byte[] cr = new byte[n], cd = new byte[n];
            float ar = ref.ternaryForward(wHat.ref, cr, w.ref, n);
            float ad = dev.ternaryForward(wHat.dev, cd, w.dev, n);
            close(ar, ad, Math.max(redTol(tg), 1.2e-7), "alpha");
            // the codes must equal the reference's codes for the device's alpha, exactly
            byte[] expect = new byte[n];
            float thr = 0.5f * ad;
            for (int i = 0; i < n; i++) {
                expect[i] = (byte) (wv[i] > thr ? 1 : wv[i] < -thr ? -1 : 0);
            }
            if (!java.util.Arrays.equals(expect, cd)) {
                throw new AssertionError("ternary codes differ from the reference's for alpha " + ad);
            }
            float[] wh = new float[n];
            dev.download(wHat.dev, wh);
            for (int i = 0; i < n; i++) {
                if (wh[i] != ad * expect[i]) {
                    throw new AssertionError("wHat[" + i + "] = " + wh[i] + ", want " + ad * expect[i]);
                }
            }
            if (ar == ad && !java.util.Arrays.equals(cr, cd)) {
                throw new AssertionError("same alpha, different codes");
            }
            double er = ref.squaredError(w.ref, wHat.ref, n), ed = dev.squaredError(w.dev, wHat.dev, n);
            close(er, ed, Math.max(redTol(tg), ar == ad ? 0 : 1e-5), "squaredError");
            P dw = pair(ref, dev, "dw", randn(n, 1));
            ref.squaredErrorBackward(dw.ref, w.ref, w.ref, n, 0.25f); // ŵ = w's own copy: a zero gradient term
            dev.squaredErrorBackward(dw.dev, w.dev, w.dev, n, 0.25f);
            P wh2 = pair(ref, dev, "wh2", wh);
            ref.squaredErrorBackward(dw.ref, w.ref, wh2.ref, n, 0.25f);
            dev.squaredErrorBackward(dw.dev, w.dev, wh2.dev, n, 0.25f);
            same(ref, dev, dw, Tol.EXACT, "squaredErrorBackward");
        });
        CHECKS.put("bitlinear", (ref, dev, tg) -> {
            int N = 7, C = 20, OC = 11;
            for (int bits : new int[] {8, 0, 4}) {
                for (boolean ternary : new boolean[] {true, false}) {
                    for (boolean relu2 : new boolean[] {true, false}) {
                        String cfg = "bits=" + bits + " ternary=" + ternary + " relu2=" + relu2;
                        float[] wv = randn(OC * C, 0.1f);
                        P inp = pair(ref, dev, "inp", randn(N * C, 1)), w = pair(ref, dev, "w", wv);
                        P out = zeros(ref, dev, "out", N * OC), pre = zeros(ref, dev, "pre", N * OC);
                        P xh = zeros(ref, dev, "xh", N * C), sc = zeros(ref, dev, "sc", N), wh = zeros(ref, dev, "wh", OC * C);
                        float ar = ref.bitLinearForward(out.ref, pre.ref, xh.ref, sc.ref, wh.ref, inp.ref, w.ref, N, C, OC,
                                bits, ternary, relu2);
                        float ad = dev.bitLinearForward(out.dev, pre.dev, xh.dev, sc.dev, wh.dev, inp.dev, w.dev, N, C, OC,
                                bits, ternary, relu2);
                        close(ar, ad, Math.max(redTol(tg), 1.2e-7), "alpha " + cfg);
                        Tol tol = ar == ad ? Tol.EXACT : new Tol(1e-5, 1e-5);
                        if (!tg.exactFloat()) {
                            tol = new Tol(1e-5, 1e-5);
                        }
                        same(ref, dev, out, tol, "bitLinear out " + cfg);
                        if (bits != 0) {
                            same(ref, dev, xh, Tol.EXACT, "bitLinear xHat " + cfg);
                            same(ref, dev, sc, Tol.EXACT, "bitLinear actScale " + cfg);
                        }
                        P dout = pair(ref, dev, "dout", randn(N * OC, 1)), dpre = zeros(ref, dev, "dpre", N * OC);
                        P dinp = pair(ref, dev, "dinp", randn(N * C, 1)), dw = pair(ref, dev, "dw", randn(OC * C, 1));
                        ref.bitLinearBackward(dinp.ref, dw.ref, dpre.ref, dout.ref, pre.ref, xh.ref, wh.ref, inp.ref, w.ref,
                                N, C, OC, bits, ternary, relu2);
                        dev.bitLinearBackward(dinp.dev, dw.dev, dpre.dev, dout.dev, pre.dev, xh.dev, wh.dev, inp.dev, w.dev,
                                N, C, OC, bits, ternary, relu2);
                        Tol tb = tol.atol == 0 ? tol : new Tol(1e-4, 1e-4);
                        same(ref, dev, dinp, tb, "bitLinear dinp " + cfg);
                        same(ref, dev, dw, tb, "bitLinear dweight " + cfg);
                    }
                }
            }
        });
        CHECKS.put("hbitlinear", (ref, dev, tg) -> {
            int N = 6, C = 24, P_ = 32, OC = 9;
            for (boolean relu2 : new boolean[] {true, false}) {
                P inp = pair(ref, dev, "inp", randn(N * C, 1)), lw = pair(ref, dev, "lw", uniform(C, 0.5f, 1.5f));
                P lb = pair(ref, dev, "lb", randn(C, 0.1f)), w = pair(ref, dev, "w", randn(OC * P_, 0.1f));
                P out = zeros(ref, dev, "out", N * OC), pre = zeros(ref, dev, "pre", N * OC), zh = zeros(ref, dev, "zh", N * P_);
                P sc = zeros(ref, dev, "sc", N), wh = zeros(ref, dev, "wh", OC * P_), z = zeros(ref, dev, "z", N * P_);
                P lo = zeros(ref, dev, "lo", N * C), lm = zeros(ref, dev, "lm", N), lr = zeros(ref, dev, "lr", N);
                float ar = ref.hBitLinearForward(out.ref, pre.ref, zh.ref, sc.ref, wh.ref, z.ref, lo.ref, lm.ref, lr.ref,
                        inp.ref, lw.ref, lb.ref, w.ref, N, C, P_, OC, 1e-5f, 8, true, relu2);
                float ad = dev.hBitLinearForward(out.dev, pre.dev, zh.dev, sc.dev, wh.dev, z.dev, lo.dev, lm.dev, lr.dev,
                        inp.dev, lw.dev, lb.dev, w.dev, N, C, P_, OC, 1e-5f, 8, true, relu2);
                close(ar, ad, Math.max(redTol(tg), 1.2e-7), "alpha");
                Tol tol = tg.exactFloat() && ar == ad ? Tol.EXACT : new Tol(1e-4, 1e-4);
                same(ref, dev, z, tg.exactFloat() ? Tol.EXACT : new Tol(1e-5, 1e-5), "hBitLinear z (FWHT)");
                same(ref, dev, out, tol, "hBitLinear out");
                P dout = pair(ref, dev, "dout", randn(N * OC, 1)), dpre = zeros(ref, dev, "dpre", N * OC);
                P dz = zeros(ref, dev, "dz", N * P_), dlo = zeros(ref, dev, "dlo", N * C);
                P dinp = pair(ref, dev, "dinp", randn(N * C, 1)), dlw = pair(ref, dev, "dlw", randn(C, 1));
                P dlb = pair(ref, dev, "dlb", randn(C, 1)), dw = pair(ref, dev, "dw", randn(OC * P_, 1));
                ref.hBitLinearBackward(dinp.ref, dlw.ref, dlb.ref, dw.ref, dpre.ref, dz.ref, dlo.ref, dout.ref, pre.ref,
                        zh.ref, wh.ref, z.ref, lm.ref, lr.ref, inp.ref, lw.ref, w.ref, N, C, P_, OC, 8, true, relu2);
                dev.hBitLinearBackward(dinp.dev, dlw.dev, dlb.dev, dw.dev, dpre.dev, dz.dev, dlo.dev, dout.dev, pre.dev,
                        zh.dev, wh.dev, z.dev, lm.dev, lr.dev, inp.dev, lw.dev, w.dev, N, C, P_, OC, 8, true, relu2);
                Tol tb = tol.atol == 0 ? tol : new Tol(1e-3, 1e-3);
                same(ref, dev, dinp, tb, "hBitLinear dinp");
                same(ref, dev, dlw, tb, "hBitLinear dlnWeight");
                same(ref, dev, dlb, tb, "hBitLinear dlnBias");
                same(ref, dev, dw, tb, "hBitLinear dweight");
            }
        });
        CHECKS.put("rope", (ref, dev, tg) -> {
            int B = 2, T = 5, NH = 3, HS = 8, maxT = 9, pos0 = 2;
            float[] cs = new float[maxT * HS / 2], sn = new float[maxT * HS / 2];
            bitskip.kernels.Rope.table(cs, sn, maxT, HS, 10000f);
            P cos = pair(ref, dev, "cos", cs), sin = pair(ref, dev, "sin", sn);
            int n = B * T * NH * HS;
            P inp = pair(ref, dev, "inp", randn(n, 1)), out = zeros(ref, dev, "out", n);
            ref.ropeForward(out.ref, inp.ref, cos.ref, sin.ref, B, T, NH, HS, pos0);
            dev.ropeForward(out.dev, inp.dev, cos.dev, sin.dev, B, T, NH, HS, pos0);
            same(ref, dev, out, Tol.EXACT, "rope forward");
            P dinp = pair(ref, dev, "dinp", randn(n, 1));
            ref.ropeBackward(dinp.ref, inp.ref, cos.ref, sin.ref, B, T, NH, HS, pos0);
            dev.ropeBackward(dinp.dev, inp.dev, cos.dev, sin.dev, B, T, NH, HS, pos0);
            same(ref, dev, dinp, Tol.EXACT, "rope backward");
        });
        CHECKS.put("attention", (ref, dev, tg) -> {
            int B = 2, T = 6, NH = 4, NKV = 2, HS = 8;
            for (boolean drop : new boolean[] {false, true}) {
                P q = pair(ref, dev, "q", randn(B * T * NH * HS, 1)), k = pair(ref, dev, "k", randn(B * T * NKV * HS, 1));
                P v = pair(ref, dev, "v", randn(B * T * NKV * HS, 1));
                P mask = null;
                if (drop) {
                    mask = zeros(ref, dev, "mask", B * NH * T * T);
                    ref.dropoutMask(mask.ref, B * NH * T * T, 0.2f, 7L, 0L);
                    dev.dropoutMask(mask.dev, B * NH * T * T, 0.2f, 7L, 0L);
                }
                P out = zeros(ref, dev, "out", B * T * NH * HS), probs = zeros(ref, dev, "probs", B * NH * T * T);
                ref.attentionForward(out.ref, probs.ref, q.ref, k.ref, v.ref, r(mask), B, T, NH, NKV, HS);
                dev.attentionForward(out.dev, probs.dev, q.dev, k.dev, v.dev, d(mask), B, T, NH, NKV, HS);
                Tol tol = t(tg, 1e-6, 1e-5);
                same(ref, dev, probs, tol, "attention probs");
                same(ref, dev, out, tol, "attention out");
                P dout = pair(ref, dev, "dout", randn(B * T * NH * HS, 1));
                P dq = pair(ref, dev, "dq", randn(B * T * NH * HS, 1)), dk = pair(ref, dev, "dk", randn(B * T * NKV * HS, 1));
                P dv = pair(ref, dev, "dv", randn(B * T * NKV * HS, 1)), scr = zeros(ref, dev, "scratch", T);
                ref.attentionBackward(dq.ref, dk.ref, dv.ref, scr.ref, dout.ref, q.ref, k.ref, v.ref, probs.ref, r(mask),
                        B, T, NH, NKV, HS);
                dev.attentionBackward(dq.dev, dk.dev, dv.dev, scr.dev, dout.dev, q.dev, k.dev, v.dev, probs.dev, d(mask),
                        B, T, NH, NKV, HS);
                Tol tb = t(tg, 1e-5, 1e-4);
                same(ref, dev, dq, tb, "attention dq");
                same(ref, dev, dk, tb, "attention dk");
                same(ref, dev, dv, tb, "attention dv");
            }
        });
        CHECKS.put("router", (ref, dev, tg) -> {
            int N = 10, C = 16, H = 4;
            P h = pair(ref, dev, "h", randn(N * C, 1)), lw = pair(ref, dev, "lw", uniform(C, 0.5f, 1.5f));
            P lb = pair(ref, dev, "lb", randn(C, 0.1f)), w1 = pair(ref, dev, "w1", randn(H * C, 0.3f));
            P b1 = pair(ref, dev, "b1", randn(H, 0.1f)), w2 = pair(ref, dev, "w2", randn(H, 0.5f)), b2 = pair(ref, dev, "b2", randn(1, 0.1f));
            P p = zeros(ref, dev, "p", N), ln = zeros(ref, dev, "ln", N * C), lm = zeros(ref, dev, "lm", N);
            P lr = zeros(ref, dev, "lr", N), hid = zeros(ref, dev, "hid", N * H);
            ref.routerForward(p.ref, ln.ref, lm.ref, lr.ref, hid.ref, h.ref, lw.ref, lb.ref, w1.ref, b1.ref, w2.ref, b2.ref,
                    N, C, H, 1e-5f);
            dev.routerForward(p.dev, ln.dev, lm.dev, lr.dev, hid.dev, h.dev, lw.dev, lb.dev, w1.dev, b1.dev, w2.dev, b2.dev,
                    N, C, H, 1e-5f);
            Tol tol = t(tg, 1e-6, 1e-5);
            same(ref, dev, p, tol, "router p");
            same(ref, dev, hid, tol, "router hidden");
            P dp = pair(ref, dev, "dp", randn(N, 1)), dh = pair(ref, dev, "dh", randn(N * C, 1));
            P dlw = pair(ref, dev, "dlw", randn(C, 1)), dlb = pair(ref, dev, "dlb", randn(C, 1));
            P dw1 = pair(ref, dev, "dw1", randn(H * C, 1)), db1 = pair(ref, dev, "db1", randn(H, 1));
            P dw2 = pair(ref, dev, "dw2", randn(H, 1)), db2 = pair(ref, dev, "db2", randn(1, 1));
            P s1 = zeros(ref, dev, "s1", N), s2 = zeros(ref, dev, "s2", N * H), s3 = zeros(ref, dev, "s3", N * H);
            P s4 = zeros(ref, dev, "s4", N * C);
            ref.routerBackward(dh.ref, dlw.ref, dlb.ref, dw1.ref, db1.ref, dw2.ref, db2.ref, s1.ref, s2.ref, s3.ref, s4.ref,
                    dp.ref, p.ref, ln.ref, lm.ref, lr.ref, hid.ref, h.ref, lw.ref, w1.ref, w2.ref, N, C, H);
            dev.routerBackward(dh.dev, dlw.dev, dlb.dev, dw1.dev, db1.dev, dw2.dev, db2.dev, s1.dev, s2.dev, s3.dev, s4.dev,
                    dp.dev, p.dev, ln.dev, lm.dev, lr.dev, hid.dev, h.dev, lw.dev, w1.dev, w2.dev, N, C, H);
            Tol tb = t(tg, 1e-5, 1e-4);
            for (Object[] g : new Object[][] {{dh, "dh"}, {dlw, "dlnWeight"}, {dlb, "dlnBias"}, {dw1, "dw1"}, {db1, "db1"},
                    {dw2, "dw2"}, {db2, "db2"}}) {
                same(ref, dev, (P) g[0], tb, "router " + g[1]);
            }
        });
        CHECKS.put("routing-loss", (ref, dev, tg) -> {
            int L = 5, N = 300;
            for (boolean bm : new boolean[] {false, true}) {
                P pe = pair(ref, dev, "pExit", uniform(L * N, 0.0f, 1.0f)), lbar = zeros(ref, dev, "lbar", N);
                double lr = ref.routingLossForward(lbar.ref, pe.ref, L, N, 2.5f, bm);
                double ld = dev.routingLossForward(lbar.dev, pe.dev, L, N, 2.5f, bm);
                same(ref, dev, lbar, Tol.EXACT, "lbar");
                close(lr, ld, Math.max(redTol(tg), 1e-12), "routing loss batchMean=" + bm);
                P dpe = pair(ref, dev, "dpExit", randn(L * N, 1));
                ref.routingLossBackward(dpe.ref, pe.ref, lbar.ref, L, N, 2.5f, bm, 0.7f);
                dev.routingLossBackward(dpe.dev, pe.dev, lbar.dev, L, N, 2.5f, bm, 0.7f);
                same(ref, dev, dpe, bm ? new Tol(1e-7, 1e-5) : Tol.EXACT, "routing dpExit batchMean=" + bm);
            }
        });
        CHECKS.put("head-loss", (ref, dev, tg) -> {
            int N = 11, C = 12, V = 301, chunk = 4; // the last chunk is partial
            int[] targets = new int[N];
            Random rn = new Random(3);
            for (int i = 0; i < N; i++) {
                targets[i] = i == 5 ? -1 : rn.nextInt(V);
            }
            P x = pair(ref, dev, "x", randn(N * C, 1)), head = pair(ref, dev, "head", randn(V * C, 0.3f));
            P lg = zeros(ref, dev, "logits", chunk * V), dlg = zeros(ref, dev, "dlogits", chunk * V);
            double er = ref.headLoss(x.ref, head.ref, targets, N, C, V, 0.0f, null, null, lg.ref, null, chunk);
            double ed = dev.headLoss(x.dev, head.dev, targets, N, C, V, 0.0f, null, null, lg.dev, null, chunk);
            close(er, ed, Math.max(redTol(tg), 1e-12), "head loss (no gradient)");
            P dx = pair(ref, dev, "dx", randn(N * C, 1)), dhead = pair(ref, dev, "dhead", randn(V * C, 1));
            double gr = ref.headLoss(x.ref, head.ref, targets, N, C, V, 1.0f / N, dx.ref, dhead.ref, lg.ref, dlg.ref, chunk);
            double gd = dev.headLoss(x.dev, head.dev, targets, N, C, V, 1.0f / N, dx.dev, dhead.dev, lg.dev, dlg.dev, chunk);
            close(gr, gd, Math.max(redTol(tg), 1e-12), "head loss");
            Tol tol = new Tol(1e-6, 1e-5);
            same(ref, dev, dx, tol, "head dx");
            same(ref, dev, dhead, tol, "head dhead");
        });
        CHECKS.put("optimizer", (ref, dev, tg) -> {
            int n = 5000;
            P g = pair(ref, dev, "g", randn(n, 1));
            close(ref.sumSquares(g.ref, n), dev.sumSquares(g.dev, n), Math.max(redTol(tg), 1e-12), "sumSquares");
            P param = pair(ref, dev, "param", randn(n, 1)), m = zeros(ref, dev, "m", n), v = zeros(ref, dev, "v", n);
            for (int step = 1; step <= 3; step++) {
                float[] gv = randn(n, 1);
                ref.upload(g.ref, gv);
                dev.upload(g.dev, gv);
                ref.adamW(param.ref, g.ref, m.ref, v.ref, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
                dev.adamW(param.dev, g.dev, m.dev, v.dev, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
            }
            same(ref, dev, param, Tol.EXACT, "adamW param");
            same(ref, dev, m, Tol.EXACT, "adamW m");
            same(ref, dev, v, Tol.EXACT, "adamW v");
        });
    }

    // ---- running the matrix ------------------------------------------------------------------------

    public enum Outcome { PASS, FAIL, SKIP }

    public record Result(String check, String target, Outcome outcome, String detail, long micros) {}

    /** Runs one check on one target against a fresh reference. */
    public static Result run(String check, Target target) {
        if (target.open() == null) {
            return new Result(check, target.label(), Outcome.SKIP, target.skipReason(), 0);
        }
        long t0 = System.nanoTime();
        RNG.set(new Random(check.hashCode()));
        try (Backend ref = new JavaBackend(); Backend dev = target.open().get()) {
            CHECKS.get(check).run(ref, dev, target);
            dev.sync();
            return new Result(check, target.label(), Outcome.PASS, "", (System.nanoTime() - t0) / 1000);
        } catch (Skip s) {
            return new Result(check, target.label(), Outcome.SKIP, s.getMessage(), 0);
        } catch (AssertionError | RuntimeException e) {
            return new Result(check, target.label(), Outcome.FAIL, String.valueOf(e.getMessage()),
                    (System.nanoTime() - t0) / 1000);
        }
    }

    /** The matrix: one row per check, one column per target. */
    public static void print(PrintStream out, List<Result> results, List<Target> targets) {
        List<String> checks = new ArrayList<>();
        for (Result r : results) {
            if (!checks.contains(r.check())) {
                checks.add(r.check());
            }
        }
        int w = 10;
        for (Target t : targets) {
            w = Math.max(w, t.label().length() + 2);
        }
        out.println();
        out.println("Device matrix (oracle: java reference; PASS / FAIL / SKIP):");
        for (OpenCLDevices.Device d : OpenCLDevices.list()) {
            out.println("  opencl " + d.id() + " = " + d.name() + " (" + d.platformName() + ")");
        }
        StringBuilder head = new StringBuilder(String.format("%-16s", "check"));
        for (Target t : targets) {
            head.append(String.format("%-" + w + "s", t.label()));
        }
        out.println(head);
        for (String c : checks) {
            StringBuilder row = new StringBuilder(String.format("%-16s", c));
            for (Target t : targets) {
                String cell = "-";
                for (Result r : results) {
                    if (r.check().equals(c) && r.target().equals(t.label())) {
                        cell = r.outcome().name();
                    }
                }
                row.append(String.format("%-" + w + "s", cell));
            }
            out.println(row);
        }
        for (Result r : results) {
            if (r.outcome() != Outcome.PASS) {
                out.println("  " + r.outcome() + " " + r.check() + " on " + r.target() + ": " + r.detail());
            }
        }
    }

    /** Runs every check on every target, prints the matrix; exit status 1 if anything failed. */
    public static void main(String[] args) {
        List<Target> targets = targets();
        List<Result> results = new ArrayList<>();
        for (String c : CHECKS.keySet()) {
            for (Target t : targets) {
                results.add(run(c, t));
            }
        }
        print(System.out, results, targets);
        boolean failed = results.stream().anyMatch(r -> r.outcome() == Outcome.FAIL);
        System.exit(failed ? 1 : 0);
    }

    private DeviceMatrix() {}

    /** For the quantizer's codes, the reference as a function (unused directly; keeps the import honest). */
    static float referenceAlpha(float[] w) {
        return Quantize.ternaryForward(null, null, w, w.length);
    }
}
