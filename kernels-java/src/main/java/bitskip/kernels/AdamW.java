package bitskip.kernels;

/**
 * One AdamW step on n parameters, in exactly the order of PyTorch's single-tensor AdamW
 * ({@code torch.optim.adamw._single_tensor_adamw}, foreach off, not capturable, amsgrad off), so that the
 * float results agree with PyTorch's operation by operation:
 * <pre>
 *   param *= 1 − lr·wd                         (decoupled weight decay, before the moments)
 *   m      = m + (1 − β1)·(g − m)              (lerp)
 *   v      = β2·v + (1 − β2)·g²
 *   bc1 = 1 − β1^step,  bc2 = 1 − β2^step      (powers in double, as Python computes them)
 *   stepSize = lr / bc1
 *   denom    = sqrt(v) / sqrt(bc2) + eps
 *   param   −= stepSize · (m / denom)
 * </pre>
 * m and v (n) are the optimizer state, zero before step 1; step counts from 1.
 */
public final class AdamW {
    private AdamW() {}

    public static void update(float[] param, float[] grad, float[] m, float[] v, int n, float lr, float beta1,
                              float beta2, float eps, float weightDecay, int step) {
        Check.positive("n", n);
        Check.len(param, "param", n, "n");
        Check.len(grad, "grad", n, "n");
        Check.len(m, "m", n, "n");
        Check.len(v, "v", n, "n");
        Check.arg(step >= 1, "step", step, "must be >= 1 (the first update is step 1)");
        Check.arg(beta1 >= 0.0f && beta1 < 1.0f, "beta1", beta1, "must be in [0, 1)");
        Check.arg(beta2 >= 0.0f && beta2 < 1.0f, "beta2", beta2, "must be in [0, 1)");
        // The scalars below are Python floats (double) in PyTorch, cast to float only when they meet the
        // tensor; computing them in double from the float arguments keeps that order. In particular β^step:
        // after thousands of steps bc2 = 1 − β2^step is close to 1 and the power must not lose digits.
        double bc1 = 1.0 - Math.pow(beta1, step);
        double bc2 = 1.0 - Math.pow(beta2, step);
        float negStepSize = (float) (-(lr / bc1));
        float bc2Sqrt = (float) Math.sqrt(bc2);
        float decay = (float) (1.0 - (double) lr * weightDecay);
        float w1 = (float) (1.0 - beta1); // the lerp weight
        float oneMinusBeta2 = (float) (1.0 - beta2);
        for (int i = 0; i < n; i++) {
            float g = grad[i];
            param[i] = param[i] * decay;
            // torch.lerp as its CPU kernel evaluates it: from the nearer end, depending on the weight
            if (w1 < 0.5f) {
                m[i] = m[i] + w1 * (g - m[i]);
            } else {
                m[i] = g - (g - m[i]) * (1.0f - w1);
            }
            // mul_(β2).addcmul_(g, g, value=1−β2): self + value·t1·t2, left to right
            v[i] = v[i] * beta2 + oneMinusBeta2 * g * g;
            // (v.sqrt() / sqrt(bc2)).add_(eps)
            float denom = (float) Math.sqrt(v[i]) / bc2Sqrt + eps;
            // addcdiv_(m, denom, value=−stepSize): self + value·t1 / t2, left to right
            param[i] = param[i] + negStepSize * m[i] / denom;
        }
    }
}
