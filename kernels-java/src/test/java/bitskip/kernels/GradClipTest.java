package bitskip.kernels;

import static bitskip.kernels.GradCheck.*;
import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class GradClipTest {
    @Test
    void belowTheMaximumTheFactorIsOne() {
        float[] g = {0.3f, -0.4f}; // norm 0.5
        assertEquals(1.0f, GradClip.clipFactor(GradClip.sumSquares(g, 2), 1.0f));
        assertEquals(1.0f, GradClip.clipFactor(0.0, 1.0f));
    }

    @Test
    void aboveTheMaximumTheScaledNormIsMaxNorm() {
        // two tensors clipped together by their global norm
        float[] a = toFloat(gaussian(1, 100)), b = toFloat(gaussian(2, 37));
        double total = GradClip.sumSquares(a, 100) + GradClip.sumSquares(b, 37);
        assertTrue(Math.sqrt(total) > 1.0);
        float f = GradClip.clipFactor(total, 1.0f);
        assertEquals((float) (1.0 / (Math.sqrt(total) + 1e-6)), f); // torch: max_norm / (total_norm + 1e-6)
        GradClip.scale(a, 100, f);
        GradClip.scale(b, 37, f);
        double after = Math.sqrt(GradClip.sumSquares(a, 100) + GradClip.sumSquares(b, 37));
        assertEquals(1.0, after, 2e-6);
    }

    @Test
    void sumSquaresAndScaleTouchOnlyTheFirstN() {
        float[] g = {1.0f, 2.0f, 100.0f};
        assertEquals(5.0, GradClip.sumSquares(g, 2));
        GradClip.scale(g, 2, 0.5f);
        assertArrayEquals(new float[] {0.5f, 1.0f, 100.0f}, g);
    }

    @Test
    void badArgumentsAreNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GradClip.sumSquares(new float[2], 3));
        assertTrue(e.getMessage().contains("argument g "), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GradClip.clipFactor(1.0, 0.0f));
        assertTrue(e.getMessage().contains("maxNorm"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GradClip.clipFactor(-1.0, 1.0f));
        assertTrue(e.getMessage().contains("totalSumSquares"), e.getMessage());
    }
}
