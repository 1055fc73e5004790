package bitskip.engine;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.Equivalence.Family;
import bitskip.engine.Equivalence.Outcome;
import bitskip.engine.Equivalence.Tol;
import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import org.junit.jupiter.api.Test;

/** The harness can fail: its rule on edge values, and its checks against backends with one wrong primitive. */
class EquivalenceSelfTest {

    @Test
    void theRuleOnEdgeValues() {
        float one = 1.0f, next = Math.nextUp(1.0f);
        assertNotNull(Equivalence.compare(new float[] {one}, new float[] {next}, Tol.EXACT), "one ulp is not exact");
        assertNull(Equivalence.compare(new float[] {0.0f}, new float[] {-0.0f}, Tol.EXACT), "+0 and -0 are equal");
        assertNull(Equivalence.compare(new float[] {Float.NaN}, new float[] {Float.NaN}, Tol.abs(1e-3, 0)));
        assertNotNull(Equivalence.compare(new float[] {1.0f}, new float[] {Float.NaN}, Tol.abs(1e9, 1e9)),
                "a NaN passes no tolerance");
        assertNotNull(Equivalence.compare(new float[] {Float.NaN}, new float[] {1.0f}, Tol.abs(1e9, 1e9)));
        // scaled: atol times the largest |want| of the tensor; absolute: atol itself
        float[] want = {100.0f, 0.0f}, got = {100.0f, 0.5f};
        assertNull(Equivalence.compare(want, got, Tol.scaled(1e-2, 0)));
        assertNotNull(Equivalence.compare(want, got, Tol.abs(1e-2, 0)));
        assertNotNull(Equivalence.compare(1.0, 1.0 + 1e-9, Tol.rel(1e-12)));
        assertNull(Equivalence.compare(1.0, 1.0 + 1e-13, Tol.rel(1e-12)));
    }

    @Test
    void aWrongPrimitiveFailsTheChecksThatUseIt() {
        // the FWHT without its 1/sqrt(P) scaling: H-BitLinear fails, BitLinear does not use it
        Backend noScale = broken("fwht", (inner, args) -> {
            inner.fwht((Tensor) args[0], (int) args[1], (int) args[2]);
            float[] a = new float[((Tensor) args[0]).size()];
            inner.download((Tensor) args[0], a);
            a[0] = Math.nextUp(a[0]);
            inner.upload((Tensor) args[0], a);
            return null;
        });
        assertEquals(Outcome.FAIL, run("hbitlinear", noScale).outcome());
        assertEquals(Outcome.PASS, run("bitlinear", noScale).outcome());
        // a one-ulp error in one element of one pointwise op
        Backend addUlp = broken("pointwise", (inner, args) -> {
            Span out = (Span) args[1];
            inner.pointwise((Pointwise) args[0], out, (Span) args[2], (Span) args[3], (int) args[4], (float) args[5]);
            if (args[0] == Pointwise.ADD) {
                float[] a = new float[out.tensor().size()];
                inner.download(out.tensor(), a);
                a[out.offset()] = Math.nextUp(a[out.offset()]);
                inner.upload(out.tensor(), a);
            }
            return null;
        });
        Equivalence.Result r = run("pointwise", addUlp);
        assertEquals(Outcome.FAIL, r.outcome(), r.detail());
    }

    private static Equivalence.Result run(String check, Backend be) {
        return Equivalence.run(check, new Equivalence.Target("broken", () -> be, null, null, Family.COMPOSED));
    }

    interface Override {
        Object call(Backend inner, Object[] args);
    }

    /** JavaBackend.primitivesOnly with one primitive replaced; Backend's compositions run through the proxy. */
    private static Backend broken(String method, Override o) {
        Backend inner = JavaBackend.primitivesOnly();
        InvocationHandler h = (proxy, m, args) -> {
            if (m.getName().equals(method)) {
                return o.call(inner, args);
            }
            if (m.isDefault()) {
                return InvocationHandler.invokeDefault(proxy, m, args);
            }
            return m.invoke(inner, args);
        };
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, h);
    }
}
