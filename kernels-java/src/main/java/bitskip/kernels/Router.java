package bitskip.kernels;

/**
 * The routing gate of a block (MODEL.md section 3, paper Eq. 6), per token:
 * {@code p = sigmoid(W2 · relu(W1 · LN(h) + b1) + b2)}, with the router's own LayerNorm.
 *
 * <p>Shapes: h (N, C) the block's output; lnWeight, lnBias (C); w1 (H, C), b1 (H); w2 (1, H), b2 (1);
 * p (N). H is the hidden size (C/4 in the paper). Saved by forward for backward: ln (N, C) the LayerNorm
 * output, lnMean and lnRstd (N), hidden (N, H) the ReLU output.
 *
 * <p>Built from LayerNorm, Matmul and Activations, so it inherits their conventions and their checks.
 */
public final class Router {
    private Router() {}

    /** Overwrites p and the saved arrays ln, lnMean, lnRstd, hidden. */
    public static void forward(float[] p, float[] ln, float[] lnMean, float[] lnRstd, float[] hidden, float[] h,
                               float[] lnWeight, float[] lnBias, float[] w1, float[] b1, float[] w2, float[] b2,
                               int N, int C, int H, float eps) {
        checkParams(lnWeight, lnBias, w1, b1, w2, b2, C, H);
        Check.positive("N", N);
        Check.len(p, "p", N, "N");
        Check.len(hidden, "hidden", (long) N * H, "N*H");
        checkSaved(ln, lnMean, lnRstd, h, N, C);
        LayerNorm.forward(ln, lnMean, lnRstd, h, lnWeight, lnBias, N, C, eps);
        Matmul.forward(hidden, ln, w1, b1, N, C, H);
        // in place: ReLU is elementwise, and its backward needs only its output
        Activations.reluForward(hidden, hidden, N * H);
        // p first holds the gate's logit (N, 1), then the sigmoid of it, in place
        Matmul.forward(p, hidden, w2, b2, N, H, 1);
        Activations.sigmoidForward(p, p, N);
    }

    /**
     * Accumulates dh (N, C) and the parameter gradients (shapes as their parameters) from dp (N).
     * Scratch, overwritten: dlogit (N), dhidden (N, H), dpre (N, H), dln (N, C); each receives the gradient
     * of one intermediate (the logit, the ReLU output, the ReLU input, the LayerNorm output).
     */
    public static void backward(float[] dh, float[] dlnWeight, float[] dlnBias, float[] dw1, float[] db1,
                                float[] dw2, float[] db2, float[] dlogit, float[] dhidden, float[] dpre,
                                float[] dln, float[] dp, float[] p, float[] ln, float[] lnMean, float[] lnRstd,
                                float[] hidden, float[] h, float[] lnWeight, float[] w1, float[] w2,
                                int N, int C, int H) {
        Check.positive("N", N, "C", C, "H", H);
        checkSaved(ln, lnMean, lnRstd, h, N, C);
        Check.len(dh, "dh", (long) N * C, "N*C");
        Check.len(lnWeight, "lnWeight", C, "C");
        Check.len(dlnWeight, "dlnWeight", C, "C");
        Check.len(dlnBias, "dlnBias", C, "C");
        Check.len(dp, "dp", N, "N");
        Check.len(p, "p", N, "N");
        Check.len(dlogit, "dlogit", N, "N");
        Check.len(dhidden, "dhidden", (long) N * H, "N*H");
        Check.len(dpre, "dpre", (long) N * H, "N*H");
        Check.len(dln, "dln", (long) N * C, "N*C");
        Check.len(hidden, "hidden", (long) N * H, "N*H");
        Check.len(w1, "w1", (long) H * C, "H*C");
        Check.len(w2, "w2", H, "1*H");
        Check.len(dw1, "dw1", (long) H * C, "H*C");
        Check.len(db1, "db1", H, "H");
        Check.len(dw2, "dw2", H, "1*H");
        Check.len(db2, "db2", 1, "1");
        // The pieces' backwards accumulate, so the scratch gradients start from zero.
        zero(dlogit, N);
        zero(dhidden, N * H);
        zero(dpre, N * H);
        zero(dln, N * C);
        Activations.sigmoidBackward(dlogit, dp, p, N);
        Matmul.backward(dhidden, dw2, db2, dlogit, hidden, w2, N, H, 1);
        Activations.reluBackward(dpre, dhidden, hidden, N * H);
        Matmul.backward(dln, dw1, db1, dpre, ln, w1, N, C, H);
        LayerNorm.backward(dh, dlnWeight, dlnBias, dln, h, lnWeight, lnMean, lnRstd, N, C);
    }

    private static void zero(float[] a, int n) {
        for (int i = 0; i < n; i++) {
            a[i] = 0.0f;
        }
    }

    /** The names the router's callers use, before LayerNorm checks the same arrays under its own names. */
    private static void checkSaved(float[] ln, float[] lnMean, float[] lnRstd, float[] h, int N, int C) {
        Check.len(h, "h", (long) N * C, "N*C");
        Check.len(ln, "ln", (long) N * C, "N*C");
        Check.len(lnMean, "lnMean", N, "N");
        Check.len(lnRstd, "lnRstd", N, "N");
    }

    private static void checkParams(float[] lnWeight, float[] lnBias, float[] w1, float[] b1, float[] w2,
                                    float[] b2, int C, int H) {
        Check.positive("C", C, "H", H);
        Check.len(lnWeight, "lnWeight", C, "C");
        Check.len(lnBias, "lnBias", C, "C");
        Check.len(w1, "w1", (long) H * C, "H*C");
        Check.len(b1, "b1", H, "H");
        Check.len(w2, "w2", H, "1*H");
        Check.len(b2, "b2", 1, "1");
    }
}
