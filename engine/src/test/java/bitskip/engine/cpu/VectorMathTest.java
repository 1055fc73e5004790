package bitskip.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import java.util.Random;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/**
 * VectorMath.exp gives the same bits as the same algorithm written in scalar float arithmetic (which Java
 * defines exactly), on every round: the early rounds run interpreted, the later ones compiled by C2, so a
 * result that depended on the JIT state (as {@code lanewise(EXP)} did) fails here. It is also within 2 ulp of
 * Math.exp wherever the result is a normal float.
 */
class VectorMathTest {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /** The algorithm of VectorMath.exp, one float at a time. */
    private static float scalarExp(float x) {
        if (Float.isNaN(x)) {
            return Float.NaN;
        }
        if (x < -87.3365447505531f) {
            return 0.0f;
        }
        if (x > 88.3762626647949f) {
            return Float.POSITIVE_INFINITY;
        }
        float k = x * 1.44269504088896341f + 12582912.0f - 12582912.0f;
        float r = x - k * 0.693359375f - k * -2.12194440e-4f;
        float p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r
                + 1.6666665459e-1f) * r + 5.0000001201e-1f) * (r * r) + r) + 1.0f;
        return p * Float.intBitsToFloat(((int) k + 127) << 23);
    }

    @Test
    void sameBitsAsTheScalarAlgorithmColdAndCompiled() {
        Random rnd = new Random(1);
        int n = S.length() * 4096;
        float[] x = new float[n], y = new float[n];
        for (int round = 0; round < 40; round++) {
            for (int i = 0; i < n; i++) {
                x[i] = (float) (rnd.nextDouble() * 200 - 100);
            }
            x[0] = Float.NaN;
            x[1] = Float.NEGATIVE_INFINITY;
            x[2] = Float.POSITIVE_INFINITY;
            x[3] = -0.0f;
            x[4] = -87.3365447505531f;
            x[5] = 88.3762626647949f;
            for (int i = 0; i < n; i += S.length()) {
                VectorMath.exp(FloatVector.fromArray(S, x, i)).intoArray(y, i);
            }
            for (int i = 0; i < n; i++) {
                float want = scalarExp(x[i]);
                if (Float.floatToRawIntBits(want) != Float.floatToRawIntBits(y[i])) {
                    fail("round " + round + ": exp(" + x[i] + ") = " + y[i] + ", the scalar algorithm gives " + want);
                }
            }
        }
    }

    @Test
    void withinTwoUlpOfMathExpForNormalResults() {
        float[] x = new float[S.length() * 8192];
        for (int i = 0; i < x.length; i++) {
            x[i] = -87.0f + 175.0f * i / x.length;
        }
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i += S.length()) {
            VectorMath.exp(FloatVector.fromArray(S, x, i)).intoArray(y, i);
        }
        for (int i = 0; i < x.length; i++) {
            float want = (float) Math.exp(x[i]);
            if (Float.isInfinite(want)) {
                continue;
            }
            float ulps = Math.abs(y[i] - want) / Math.ulp(want);
            if (!(ulps <= 2.0f)) {
                fail("exp(" + x[i] + ") = " + y[i] + ", Math.exp gives " + want + ": " + ulps + " ulp apart");
            }
        }
        assertEquals(1.0f, scalarExp(0.0f));
    }

    @Test
    void expNonPositiveEqualsExpWhereItApplies() {
        Random rnd = new Random(2);
        float[] x = new float[S.length() * 2048], a = new float[x.length], b = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (-rnd.nextDouble() * (i % 3 == 0 ? 100 : 10));
        }
        x[0] = Float.NaN;
        x[1] = Float.NEGATIVE_INFINITY;
        x[2] = -0.0f;
        x[3] = 0.0f;
        x[4] = -87.3365447505531f;
        x[5] = Math.nextDown(-87.3365447505531f);
        for (int i = 0; i < x.length; i += S.length()) {
            VectorMath.exp(FloatVector.fromArray(S, x, i)).intoArray(a, i);
            VectorMath.expNonPositive(FloatVector.fromArray(S, x, i)).intoArray(b, i);
        }
        for (int i = 0; i < x.length; i++) {
            assertEquals(Float.floatToRawIntBits(a[i]), Float.floatToRawIntBits(b[i]), "x = " + x[i]);
        }
    }
}
