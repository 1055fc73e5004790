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
    void sweepRatesAgainstTheMedianBaselineFastestFirst() {
        // b followed a slow full-model run: ×1.50 against it, ×1.00 against the median of 400, 600, 600
        String out = InferenceBench.againstMedian(java.util.List.of("b", "a", "c"), new double[] {600, 660, 540},
                new double[] {400, 600, 600});
        assertEquals(String.join("\n",
                "sweep full model measured before each strategy (3 times): median 600.0 tok/s, range 400.0–600.0 (-33% to +0%)",
                String.format("sweep vs median  %-44s x1.10 of the median full model (x1.10 of the adjacent one)", "a"),
                String.format("sweep vs median  %-44s x1.00 of the median full model (x1.50 of the adjacent one)", "b"),
                String.format("sweep vs median  %-44s x0.90 of the median full model (x0.90 of the adjacent one)", "c"), ""), out);
    }

    @Test
    void zeroRoundsIsRefusedBeforeAllocatingAnything() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> InferenceBench.memory(16, 128, 0, LmHead.X_LEVELS, new Parallel(1)));
        assertEquals("--gemv-rounds must be at least 1, got 0", e.getMessage());
    }
}
