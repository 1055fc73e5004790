package bitskip.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/** Lanes.sum adds the halves in the documented order: the same bits as that order written out in scalars. */
class LanesTest {
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;

    private static float halves(float[] a) {
        a = a.clone();
        for (int h = a.length / 2; h >= 1; h /= 2) {
            for (int i = 0; i < h; i++) {
                a[i] = a[i] + a[i + h];
            }
        }
        return a[0];
    }

    private static double halves(double[] a) {
        a = a.clone();
        for (int h = a.length / 2; h >= 1; h /= 2) {
            for (int i = 0; i < h; i++) {
                a[i] = a[i] + a[i + h];
            }
        }
        return a[0];
    }

    @Test
    void sumsInTheFixedOrder() {
        Random r = new Random(4);
        float[] specials = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -0.0f, 3e38f, 1e-45f};
        for (int round = 0; round < 2000; round++) {
            float[] f = new float[FS.length()];
            double[] d = new double[DS.length()];
            for (int i = 0; i < f.length; i++) {
                f[i] = round % 50 == 0 && i == round % f.length ? specials[(round / 50) % specials.length]
                        : (float) (r.nextGaussian() * Math.pow(10, r.nextInt(12) - 6));
            }
            for (int i = 0; i < d.length; i++) {
                d[i] = r.nextGaussian() * Math.pow(10, r.nextInt(30) - 15);
            }
            assertEquals(Float.floatToRawIntBits(halves(f)), Float.floatToRawIntBits(Lanes.sum(FloatVector.fromArray(FS, f, 0))),
                    "round " + round);
            assertEquals(Double.doubleToRawLongBits(halves(d)), Double.doubleToRawLongBits(Lanes.sum(DoubleVector.fromArray(DS, d, 0))),
                    "round " + round);
        }
        // another species takes the shift path, same order
        VectorSpecies<Float> f128 = FloatVector.SPECIES_128;
        float[] g = {1e8f, 1f, -1e8f, 1f};
        assertEquals(halves(g), Lanes.sum(FloatVector.fromArray(f128, g, 0)));
    }
}
