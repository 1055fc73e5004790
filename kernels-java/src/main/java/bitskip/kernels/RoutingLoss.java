package bitskip.kernels;

/**
 * The routing loss (MODEL.md section 3, paper Eq. 9) over L layers and N tokens. pExit (L, N) is
 * layer-major: pExit[l*N + n] is the router output p_l of layer l for token n.
 * <pre>
 *   P(exit at l) = p_l · Π_{i<l} (1 − p_i)              l = 0..L-1
 *   lbar_n      = Σ_l l · P(exit at l)                   (expected exit layer, 0-based)
 *   per-token  (batchMean false, the paper):           loss = mean_n (lbar_n − target)²
 *   batch-mean (batchMean true, the authors' code):    loss = (mean_n lbar_n − target)²
 * </pre>
 * The probability mass of never exiting, Π_l (1 − p_l), contributes nothing to lbar, as in Eq. 9.
 */
public final class RoutingLoss {
    private RoutingLoss() {}

    /** Overwrites lbar (N) and returns the loss. */
    public static double forward(float[] lbar, float[] pExit, int L, int N, float target, boolean batchMean) {
        Check.positive("L", L, "N", N);
        Check.len(lbar, "lbar", N, "N");
        Check.len(pExit, "pExit", (long) L * N, "L*N");
        // Sums over N = B*T tokens (tens of thousands): accumulated in double.
        double sumSq = 0.0;
        double sumLbar = 0.0;
        for (int n = 0; n < N; n++) {
            float survive = 1.0f; // Π_{i<l} (1 − p_i): the probability of reaching layer l
            float e = 0.0f;
            for (int l = 0; l < L; l++) {
                float p = pExit[l * N + n];
                e += l * (p * survive);
                survive = survive * (1.0f - p);
            }
            lbar[n] = e;
            double d = (double) e - target;
            sumSq += d * d;
            sumLbar += e;
        }
        if (batchMean) {
            double d = sumLbar / N - target;
            return d * d;
        }
        return sumSq / N;
    }

    /**
     * Accumulates dpExit (L, N) += d(gradScale·loss)/dpExit, given lbar (N) from forward.
     *
     * <p>The derivative. For one token, write S_l = Π_{i<l}(1 − p_i) (reaching layer l) and
     * R_l = Σ_{j>l} j · p_j · Π_{l<i<j}(1 − p_i) (the expected exit layer counted from layer l+1 on, given
     * layer l was passed). Then lbar = Σ_{j<l} j·P(exit at j) + S_l·(l·p_l + (1 − p_l)·R_l), where only
     * the last bracket depends on p_l, so
     * <pre>
     *   d lbar / d p_l = S_l · (l − R_l),     R_{L-1} = 0,   R_{l-1} = l·p_l + (1 − p_l)·R_l.
     * </pre>
     * (No division by 1 − p_l, so p_l = 1 is fine.) The outer derivative: per-token,
     * d loss / d lbar_n = 2(lbar_n − target)/N; batch-mean, d loss / d lbar_n = 2(mean lbar − target)/N.
     */
    public static void backward(float[] dpExit, float[] pExit, float[] lbar, int L, int N, float target,
                                boolean batchMean, float gradScale) {
        Check.positive("L", L, "N", N);
        Check.len(dpExit, "dpExit", (long) L * N, "L*N");
        Check.len(pExit, "pExit", (long) L * N, "L*N");
        Check.len(lbar, "lbar", N, "N");
        float meanLbar = 0.0f;
        if (batchMean) {
            double s = 0.0; // a sum over N tokens: in double
            for (int n = 0; n < N; n++) {
                s += lbar[n];
            }
            meanLbar = (float) (s / N);
        }
        for (int n = 0; n < N; n++) {
            float residual = batchMean ? meanLbar - target : lbar[n] - target;
            float dlbar = gradScale * 2.0f * residual / N;
            // walk the layers from the last to the first, carrying R_l; S_l is recomputed for each l
            // (L is 12: the O(L²) product keeps the kernel free of scratch)
            float rest = 0.0f; // R_l
            for (int l = L - 1; l >= 0; l--) {
                float survive = 1.0f;
                for (int i = 0; i < l; i++) {
                    survive = survive * (1.0f - pExit[i * N + n]);
                }
                dpExit[l * N + n] += dlbar * survive * (l - rest);
                float p = pExit[l * N + n];
                rest = l * p + (1.0f - p) * rest;
            }
        }
    }
}
