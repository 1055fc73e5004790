package bitskip.kernels;

/**
 * Fused softmax + cross-entropy over a chunk of R rows of logits (R, V). The model applies the LM head
 * chunk by chunk, so logits of all layers and tokens are never held at once; each chunk's loss is summed
 * here and the caller divides by the number of counted tokens (or passes that factor as gradScale).
 *
 * <p>targets (R): the index of the correct token per row, or -1 to ignore the row (zero loss, zero
 * gradient), as {@code ignore_index=-1}. Any other value outside [0, V) is an error.
 */
public final class CrossEntropy {
    private CrossEntropy() {}

    /**
     * Returns Σ over rows with target >= 0 of (logsumexp(row) − row[target]). If dlogits is not null,
     * overwrites it with (softmax(row) − onehot(target))·gradScale, and with 0 on ignored rows: the gradient
     * of gradScale·(returned loss). logits is only read; dlogits may be the logits array itself, in which
     * case the logits are replaced by their gradient (each element is read before it is written).
     */
    public static double forwardBackward(float[] logits, float[] dlogits, int[] targets, int R, int V,
                                         float gradScale) {
        check(logits, dlogits, targets, R, V);
        // The loss is a sum over up to thousands of rows: accumulated in double.
        double loss = 0.0;
        for (int r = 0; r < R; r++) {
            loss += row(logits, dlogits, targets[r], r * V, V, gradScale);
        }
        return loss;
    }

    /**
     * {@link #forwardBackward} with each row's loss written to rowLoss[r] (0 for an ignored row) instead of
     * summed, so that a caller can sum rows across chunks in one order.
     */
    public static void rowLosses(float[] logits, float[] dlogits, int[] targets, int R, int V, float gradScale,
                                 double[] rowLoss) {
        check(logits, dlogits, targets, R, V);
        if (rowLoss == null || rowLoss.length < R) {
            Check.arg(false, "rowLoss", rowLoss == null ? "null" : "length " + rowLoss.length, "needs R = " + R + " entries");
        }
        for (int r = 0; r < R; r++) {
            rowLoss[r] = row(logits, dlogits, targets[r], r * V, V, gradScale);
        }
    }

    private static double row(float[] logits, float[] dlogits, int target, int row, int V, float gradScale) {
        if (target < 0) {
            if (dlogits != null) {
                for (int i = 0; i < V; i++) {
                    dlogits[row + i] = 0.0f;
                }
            }
            return 0.0;
        }
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < V; i++) {
            if (logits[row + i] > max) {
                max = logits[row + i];
            }
        }
        // Σ exp over V = 50257 terms: in float the running sum loses the small terms once it is large
        // (a relative error growing with V), so it is accumulated in double.
        double sum = 0.0;
        for (int i = 0; i < V; i++) {
            sum += Math.exp(logits[row + i] - max);
        }
        double logSum = Math.log(sum);
        // logsumexp − x[target] = (max + log Σ exp(x − max)) − x[target]
        double loss = (max - (double) logits[row + target]) + logSum;
        if (dlogits != null) {
            for (int i = 0; i < V; i++) {
                float p = (float) (Math.exp(logits[row + i] - max) / sum);
                float onehot = i == target ? 1.0f : 0.0f;
                dlogits[row + i] = (p - onehot) * gradScale;
            }
        }
        return loss;
    }

    private static void check(float[] logits, float[] dlogits, int[] targets, int R, int V) {
        Check.positive("R", R, "V", V);
        Check.len(logits, "logits", (long) R * V, "R*V");
        Check.len(targets, "targets", R, "R");
        if (dlogits != null) {
            Check.len(dlogits, "dlogits", (long) R * V, "R*V");
        }
        for (int r = 0; r < R; r++) {
            if (targets[r] < -1 || targets[r] >= V) {
                Check.arg(false, "targets[" + r + "]", targets[r], "must be -1 (ignored) or in [0, V) with V = " + V);
            }
        }
    }
}
