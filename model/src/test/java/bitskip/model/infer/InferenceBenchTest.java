package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** The benchmark's own arithmetic: what its summary line reports. */
class InferenceBenchTest {
    @Test
    void spreadReportsMedianAndRangeOfTheRounds() {
        assertEquals("median 67% (range 63–78%)", InferenceBench.percentSpread(new double[] {0.78, 0.63, 0.67}));
        // even count: the mean of the middle two; the input is left as it was
        double[] x = {0.70, 0.60, 0.80, 0.50};
        assertEquals("median 65% (range 50–80%)", InferenceBench.percentSpread(x));
        assertEquals(0.70, x[0]);
    }

    @Test
    void zeroRoundsIsRefusedBeforeAllocatingAnything() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> InferenceBench.memory(16, 128, 0, new Parallel(1)));
        assertEquals("--gemv-rounds must be at least 1, got 0", e.getMessage());
    }
}
