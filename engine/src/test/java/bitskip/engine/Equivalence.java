package bitskip.engine;

import bitskip.engine.cpu.CpuBackend;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.function.Supplier;

/**
 * The one equivalence harness: every check of {@link EquivalenceChecks} (every primitive and every composite
 * of {@link Backend}) runs on a backend under test and on the oracle, {@link JavaBackend}, from the same
 * inputs, and compares the results by one rule. Used by {@code EquivalenceTest} (JUnit, every target, writes
 * {@code target/device-matrix.txt}) and by {@link #main} (the same matrix printed, for the GPU bundle of
 * {@code scripts/gpu-matrix.sh}, which has no JUnit: it runs this class from the engine's test jar, which is
 * why the harness itself does not depend on JUnit).
 *
 * <p><b>The rule</b>, for every element: with an exact tolerance, got and want are the same float (+0 and −0
 * count as equal, as do two NaNs); otherwise {@code |got − want| <= atol·S + rtol·|want|}, S being 1 for an
 * absolute tolerance and max|want| over the tensor for a scaled one, and a NaN on one side only fails (the
 * test is written {@code !(err <= allowed)}). Scalars follow the same rule. Each comparison states its
 * tolerance per target family (the Java compositions, the cpu backend, a device in fp64, a device in float):
 * the numbers are those the two former harnesses stated, none loosened.
 */
public final class Equivalence {
    private Equivalence() {}

    /** What a target is expected to reproduce: its comparisons pick their tolerance by family. */
    public enum Family {
        /** Backend's compositions on the reference's primitives: the reference's operations, composed anew. */
        COMPOSED,
        /** The cpu backend: exact element-wise ops, its own GEMM and reduction orders. */
        CPU,
        /** A device with fp64 accumulators: the reference's operation order, bit for bit where it has no sums. */
        DEVICE_FP64,
        /** A device with float-only kernels. */
        DEVICE_FP32
    }

    /** A backend under test, or absent with the reason; requirement is its name in {@link Requirements}. */
    public record Target(String label, Supplier<Backend> open, String unavailable, String requirement, Family family) {}

    /** One tolerance: exact, absolute (atol), or scaled (atol times the largest |want| of the tensor). */
    public record Tol(double atol, double rtol, boolean scaled) {
        public static final Tol EXACT = new Tol(0, 0, false);

        public static Tol abs(double atol, double rtol) {
            return new Tol(atol, rtol, false);
        }

        public static Tol scaled(double atol, double rtol) {
            return new Tol(atol, rtol, true);
        }

        public static Tol rel(double rtol) {
            return new Tol(1e-30, rtol, false);
        }

        boolean exact() {
            return atol == 0 && rtol == 0;
        }

        @Override
        public String toString() {
            return exact() ? "exact" : String.format(Locale.ROOT, "atol %.1e%s + rtol %.1e", atol, scaled ? "·max|want|" : "", rtol);
        }
    }

    /** A comparison's tolerance for each family. */
    public record Tols(Tol composed, Tol cpu, Tol fp64, Tol fp32) {
        public static final Tols EXACT = all(Tol.EXACT);

        public static Tols all(Tol t) {
            return new Tols(t, t, t, t);
        }

        Tol of(Family f) {
            return switch (f) {
                case COMPOSED -> composed;
                case CPU -> cpu;
                case DEVICE_FP64 -> fp64;
                case DEVICE_FP32 -> fp32;
            };
        }
    }

    /** Where a check compares: returns null when every element passes, else what failed and where. */
    static String compare(float[] want, float[] got, Tol tol) {
        double scale = 1.0;
        if (tol.scaled()) {
            scale = 1e-30;
            for (float w : want) {
                scale = Math.max(scale, Math.abs(w));
            }
        }
        int bad = 0, worst = -1;
        double worstRatio = -1;
        for (int i = 0; i < want.length; i++) {
            double w = want[i], g = got[i];
            boolean ok;
            double ratio;
            if (tol.exact()) {
                ok = Float.floatToIntBits(want[i]) == Float.floatToIntBits(got[i]) || (w == 0 && g == 0);
                ratio = ok ? 0 : Double.POSITIVE_INFINITY;
            } else {
                double err = Math.abs(g - w), allowed = tol.atol() * scale + tol.rtol() * Math.abs(w);
                ok = err <= allowed || (Double.isNaN(w) && Double.isNaN(g));
                ratio = ok ? err / allowed : Double.POSITIVE_INFINITY;
                if (!ok && !Double.isNaN(err)) {
                    ratio = err / allowed;
                }
            }
            if (!ok) {
                bad++;
                if (worst < 0 || ratio > worstRatio) {
                    worst = i;
                    worstRatio = ratio;
                }
            }
        }
        if (bad == 0) {
            return null;
        }
        return String.format(Locale.ROOT, "%d of %d elements outside %s; worst [%d] want %.9g got %.9g (diff %.3e)", bad,
                want.length, tol, worst, want[worst], got[worst], Math.abs((double) got[worst] - want[worst]));
    }

    static String compare(double want, double got, Tol tol) {
        if (tol.exact()) {
            return Double.doubleToLongBits(want) == Double.doubleToLongBits(got) ? null
                    : String.format(Locale.ROOT, "want %.17g got %.17g (exact)", want, got);
        }
        double err = Math.abs(got - want), allowed = tol.atol() + tol.rtol() * Math.abs(want);
        return err <= allowed ? null : String.format(Locale.ROOT, "want %.17g got %.17g (relative %.3e; %s)", want, got,
                err / Math.abs(want), tol);
    }

    // ---- the targets ----------------------------------------------------------------------------------

    /**
     * The backends under test: Backend's compositions on the reference primitives, the cpu backend on 1 and 2
     * threads with the vector path on and off, and each OpenCL device with fp64 and float-only kernels.
     */
    public static List<Target> targets() {
        List<Target> out = new ArrayList<>();
        out.add(new Target("java-composed", JavaBackend::primitivesOnly, null, null, Family.COMPOSED));
        for (bitskip.engine.Target t : Backends.targets()) {
            if (t.label().equals("java")) {
                continue;
            }
            if (t.requirement().equals("cpu")) {
                for (int threads : new int[] {1, 2}) {
                    for (boolean vector : new boolean[] {true, false}) {
                        String label = "cpu " + threads + "t " + (vector ? "vector" : "scalar");
                        out.add(new Target(label, t.present() ? () -> new CpuBackend(threads, vector) : null,
                                t.unavailable(), "cpu", Family.CPU));
                    }
                }
            } else {
                out.add(new Target(t.label(), t.open(), t.unavailable(), t.requirement(),
                        t.referenceOrder() ? Family.DEVICE_FP64 : Family.DEVICE_FP32));
            }
        }
        return out;
    }

    // ---- one check on one target ------------------------------------------------------------------------

    public enum Outcome { PASS, FAIL, SKIP }

    public record Result(String check, String target, Outcome outcome, String detail) {}

    /** A check's failure: the comparison that failed. */
    static final class Mismatch extends RuntimeException {
        Mismatch(String what) {
            super(what);
        }
    }

    /** Runs one check on one target against a fresh reference; an absent target is a SKIP with its reason. */
    public static Result run(String check, Target target) {
        if (target.open() == null) {
            return new Result(check, target.label(), Outcome.SKIP, target.unavailable());
        }
        try (Backend ref = new JavaBackend(); Backend dev = target.open().get()) {
            EquivalenceChecks.ALL.get(check).run(new Case(ref, dev, target.family(), new Random(check.hashCode())));
            dev.sync();
            return new Result(check, target.label(), Outcome.PASS, "");
        } catch (RuntimeException e) {
            return new Result(check, target.label(), Outcome.FAIL, check + " on " + target.label() + ": " + e.getMessage());
        }
    }

    /** The matrix: one row per check, one column per target. */
    public static void print(PrintStream out, List<Result> results, List<Target> targets) {
        int w = 10;
        for (Target t : targets) {
            w = Math.max(w, t.label().length() + 2);
        }
        out.println();
        out.println("Device matrix (oracle: the java reference; PASS / FAIL / SKIP):");
        for (bitskip.engine.opencl.OpenCLDevices.Device d : bitskip.engine.opencl.OpenCLDevices.list()) {
            out.println("  opencl " + d.id() + " = " + d.name() + " (" + d.platformName() + ")");
        }
        StringBuilder head = new StringBuilder(String.format("%-22s", "check"));
        for (Target t : targets) {
            head.append(String.format("%-" + w + "s", t.label()));
        }
        out.println(head);
        for (String c : EquivalenceChecks.ALL.keySet()) {
            StringBuilder row = new StringBuilder(String.format("%-22s", c));
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

    /** Every check on every target, the matrix printed; exit status 1 if anything failed. */
    public static void main(String[] args) {
        List<Target> targets = targets();
        List<Result> results = new ArrayList<>();
        for (String c : EquivalenceChecks.ALL.keySet()) {
            for (Target t : targets) {
                results.add(run(c, t));
            }
        }
        print(System.out, results, targets);
        System.exit(results.stream().anyMatch(r -> r.outcome() == Outcome.FAIL) ? 1 : 0);
    }

    // ---- what a check works with ------------------------------------------------------------------------

    /** The same data on both backends. */
    record P(Tensor ref, Tensor dev) {}

    /** One side of a check: a backend and how its tensors are found. */
    interface Side {
        Backend be();

        Tensor t(P p);

        default Norm norm(P weight, P bias) {
            return weight == null ? Norm.NONE : new Norm(t(weight), t(bias));
        }
    }

    /** A check's view of the two backends, its random inputs and its comparisons. */
    static final class Case {
        final Backend ref, dev;
        final Family family;
        final Random rnd;
        private final Side refSide, devSide;

        Case(Backend ref, Backend dev, Family family, Random rnd) {
            this.ref = ref;
            this.dev = dev;
            this.family = family;
            this.rnd = rnd;
            this.refSide = side(ref, true);
            this.devSide = side(dev, false);
        }

        private static Side side(Backend be, boolean isRef) {
            return new Side() {
                @Override
                public Backend be() {
                    return be;
                }

                @Override
                public Tensor t(P p) {
                    return p == null ? null : isRef ? p.ref() : p.dev();
                }
            };
        }

        P of(String name, float[] data) {
            Tensor a = ref.alloc(name, data.length), b = dev.alloc(name, data.length);
            ref.upload(a, data);
            dev.upload(b, data);
            return new P(a, b);
        }

        /** Uniform in [−scale, scale). */
        P rand(String name, int n, float scale) {
            return of(name, uniform(n, scale));
        }

        P rand(String name, int n) {
            return rand(name, n, 1.0f);
        }

        float[] uniform(int n, float scale) {
            float[] a = new float[n];
            for (int i = 0; i < n; i++) {
                a[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
            }
            return a;
        }

        P zeros(String name, int n) {
            return new P(ref.alloc(name, n), dev.alloc(name, n));
        }

        /** A device target: checks pick the smaller shapes of the former device matrix (a PoCL launch is slow). */
        boolean device() {
            return family == Family.DEVICE_FP64 || family == Family.DEVICE_FP32;
        }

        /** The same calls on both backends. */
        void both(java.util.function.Consumer<Side> op) {
            op.accept(refSide);
            op.accept(devSide);
        }

        /** The same call on both backends, returning its scalar: {reference's, device's}. */
        double[] values(java.util.function.ToDoubleFunction<Side> op) {
            return new double[] {op.applyAsDouble(refSide), op.applyAsDouble(devSide)};
        }

        /** Copies the reference's values of p to the device (to compare a backward pass alone). */
        void adopt(P p) {
            dev.upload(p.dev(), download(ref, p.ref()));
        }

        float[] download(Backend be, Tensor t) {
            float[] a = new float[t.size()];
            be.download(t, a);
            return a;
        }

        void same(String what, P p, Tols tols) {
            String bad = compare(download(ref, p.ref()), download(dev, p.dev()), tols.of(family));
            if (bad != null) {
                throw new Mismatch(what + " " + p.ref().name() + ": " + bad);
            }
        }

        void same(String what, double[] refDev, Tols tols) {
            String bad = compare(refDev[0], refDev[1], tols.of(family));
            if (bad != null) {
                throw new Mismatch(what + ": " + bad);
            }
        }

        void require(boolean ok, String what) {
            if (!ok) {
                throw new Mismatch(what);
            }
        }
    }

}
