package bitskip.kernels;

/** Pointwise activations on n elements: relu2(x) = max(x,0)², ReLU, and the sigmoid. */
public final class Activations {
    private Activations() {}

    public static void relu2Forward(float[] out, float[] inp, int n) {
        checkPointwise(out, "out", inp, "inp", n);
        for (int i = 0; i < n; i++) {
            float r = inp[i] > 0.0f ? inp[i] : 0.0f;
            out[i] = r * r;
        }
    }

    /** Accumulates dinp += dout · 2·max(inp, 0). */
    public static void relu2Backward(float[] dinp, float[] dout, float[] inp, int n) {
        checkPointwise(dinp, "dinp", dout, "dout", n);
        Check.len(inp, "inp", n, "n");
        for (int i = 0; i < n; i++) {
            if (inp[i] > 0.0f) {
                dinp[i] += dout[i] * 2.0f * inp[i];
            }
        }
    }

    public static void reluForward(float[] out, float[] inp, int n) {
        checkPointwise(out, "out", inp, "inp", n);
        for (int i = 0; i < n; i++) {
            out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
        }
    }

    /** Accumulates dinp += dout where the forward output was positive (out is the ReLU output). */
    public static void reluBackward(float[] dinp, float[] dout, float[] out, int n) {
        checkPointwise(dinp, "dinp", dout, "dout", n);
        Check.len(out, "out", n, "n");
        for (int i = 0; i < n; i++) {
            if (out[i] > 0.0f) {
                dinp[i] += dout[i];
            }
        }
    }

    public static void sigmoidForward(float[] out, float[] inp, int n) {
        checkPointwise(out, "out", inp, "inp", n);
        for (int i = 0; i < n; i++) {
            out[i] = (float) (1.0 / (1.0 + Math.exp(-inp[i])));
        }
    }

    /** Accumulates dinp += dout · out · (1 − out), from the sigmoid's output. */
    public static void sigmoidBackward(float[] dinp, float[] dout, float[] out, int n) {
        checkPointwise(dinp, "dinp", dout, "dout", n);
        Check.len(out, "out", n, "n");
        for (int i = 0; i < n; i++) {
            dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
        }
    }

    /** out = a + b, elementwise (the residual connection; its backward passes the gradient to both). */
    public static void add(float[] out, float[] a, float[] b, int n) {
        checkPointwise(out, "out", a, "a", n);
        Check.len(b, "b", n, "n");
        for (int i = 0; i < n; i++) {
            out[i] = a[i] + b[i];
        }
    }

    private static void checkPointwise(float[] x, String xName, float[] y, String yName, int n) {
        Check.positive("n", n);
        Check.len(x, xName, n, "n");
        Check.len(y, yName, n, "n");
    }
}
