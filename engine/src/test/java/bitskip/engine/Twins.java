package bitskip.engine;

import static org.junit.jupiter.api.Assertions.fail;

import bitskip.engine.cpu.CpuBackend;
import java.util.Random;

/**
 * Test harness: every tensor exists twice, on the reference {@link JavaBackend} and on a {@link CpuBackend},
 * filled with the same values; an op is run on both and the results compared element by element.
 */
final class Twins implements AutoCloseable {
    final JavaBackend ref = new JavaBackend();
    final CpuBackend cpu;
    final Random rnd;

    Twins(int threads, boolean vector, long seed) {
        this.cpu = new CpuBackend(threads, vector);
        this.rnd = new Random(seed);
    }

    /** One tensor on both backends. */
    final class T {
        final String name;
        final int n;
        final Tensor r, c;

        T(String name, float[] data) {
            this.name = name;
            this.n = data.length;
            this.r = ref.alloc(name, n);
            this.c = cpu.alloc(name, n);
            ref.upload(r, data);
            cpu.upload(c, data);
        }

        float[] ref() {
            float[] a = new float[n];
            ref.download(r, a);
            return a;
        }

        float[] cpu() {
            float[] a = new float[n];
            cpu.download(c, a);
            return a;
        }
    }

    T rand(String name, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) ((rnd.nextDouble() * 2 - 1) * scale);
        }
        return new T(name, a);
    }

    T rand(String name, int n) {
        return rand(name, n, 1.0f);
    }

    T zeros(String name, int n) {
        return new T(name, new float[n]);
    }

    T of(String name, float[] data) {
        return new T(name, data.clone());
    }

    static Tensor r(T t) {
        return t == null ? null : t.r;
    }

    static Tensor c(T t) {
        return t == null ? null : t.c;
    }

    /**
     * |cpu − ref| <= rtol·|ref| + atol·max(1e-30, max|ref|) for every element; on failure the message names the
     * worst element (largest error / allowed).
     */
    static void close(String what, float[] expected, float[] actual, double rtol, double atol) {
        double scale = 0.0;
        for (float e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        scale = Math.max(scale, 1e-30);
        int worst = -1;
        double worstRatio = 0.0;
        int bad = 0;
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i], a = actual[i];
            double allowed = rtol * Math.abs(e) + atol * scale;
            double err = Math.abs(a - e);
            if (Double.isNaN(a) != Double.isNaN(e)) {
                err = Double.POSITIVE_INFINITY;
            } else if (Double.isNaN(a)) {
                err = 0.0;
            }
            double ratio = allowed == 0.0 ? (err == 0.0 ? 0.0 : Double.POSITIVE_INFINITY) : err / allowed;
            if (ratio > 1.0) {
                bad++;
            }
            if (ratio > worstRatio || worst < 0) {
                worstRatio = ratio;
                worst = i;
            }
        }
        if (bad > 0) {
            fail(String.format("%s: %d of %d elements outside rtol %.1e + atol %.1e·%.3g; worst [%d] expected %s got %s"
                            + " (|err| %.3g = %.2f× allowed)", what, bad, expected.length, rtol, atol, scale, worst,
                    expected[worst], actual[worst], Math.abs((double) actual[worst] - expected[worst]), worstRatio));
        }
    }

    void close(String what, T t, double rtol, double atol) {
        close(what + " " + t.name, t.ref(), t.cpu(), rtol, atol);
    }

    /** Bit-for-bit equality (−0 == +0, NaN == NaN); the first mismatch is named. */
    static void exact(String what, float[] expected, float[] actual) {
        for (int i = 0; i < expected.length; i++) {
            float e = expected[i], a = actual[i];
            if (!(e == a || (Float.isNaN(e) && Float.isNaN(a)))) {
                fail(String.format("%s: not exact at [%d]: expected %s (0x%08x) got %s (0x%08x)", what, i, e,
                        Float.floatToRawIntBits(e), a, Float.floatToRawIntBits(a)));
            }
        }
    }

    void exact(String what, T t) {
        exact(what + " " + t.name, t.ref(), t.cpu());
    }

    static void closeScalar(String what, double expected, double actual, double rtol) {
        double err = Math.abs(expected - actual);
        if (!(err <= rtol * Math.abs(expected) + 1e-30)) {
            fail(String.format("%s: expected %s got %s (relative error %.3g > %.1e)", what, expected, actual,
                    err / Math.abs(expected), rtol));
        }
    }

    @Override
    public void close() {
        cpu.close();
    }
}
