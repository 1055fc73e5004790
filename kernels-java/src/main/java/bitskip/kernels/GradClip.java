package bitskip.kernels;

/**
 * Global gradient-norm clipping as {@code torch.nn.utils.clip_grad_norm_} (norm type 2): the caller sums
 * {@link #sumSquares} over every gradient tensor, asks {@link #clipFactor} for the factor, and applies
 * {@link #scale} to every tensor (PyTorch multiplies even when the factor is 1, which changes nothing).
 */
public final class GradClip {
    private GradClip() {}

    /** Σ g² over the first n elements. A sum over millions of elements: accumulated in double. */
    public static double sumSquares(float[] g, int n) {
        Check.positive("n", n);
        Check.len(g, "g", n, "n");
        double s = 0.0;
        for (int i = 0; i < n; i++) {
            s += (double) g[i] * g[i];
        }
        return s;
    }

    /** g *= factor on the first n elements. */
    public static void scale(float[] g, int n, float factor) {
        Check.positive("n", n);
        Check.len(g, "g", n, "n");
        for (int i = 0; i < n; i++) {
            g[i] = g[i] * factor;
        }
    }

    /**
     * min(1, maxNorm / (sqrt(totalSumSquares) + 1e-6)), torch's clip coefficient clamped at 1. A non-finite
     * total gives NaN or 0 (as torch with error_if_nonfinite=False); the caller decides what to do then.
     */
    public static float clipFactor(double totalSumSquares, float maxNorm) {
        Check.arg(maxNorm > 0.0f, "maxNorm", maxNorm, "must be positive");
        Check.arg(!(totalSumSquares < 0.0), "totalSumSquares", totalSumSquares, "must not be negative");
        double norm = Math.sqrt(totalSumSquares);
        double factor = maxNorm / (norm + 1e-6);
        return (float) Math.min(1.0, factor);
    }
}
