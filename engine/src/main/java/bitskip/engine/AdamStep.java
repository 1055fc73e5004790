package bitskip.engine;

/**
 * The hyper-parameters of one AdamW step (kernel {@code AdamW.update}) and the scalars derived from them,
 * computed once here in double as PyTorch computes them (Python floats), so every backend's update uses the
 * same floats: {@code param = param·decay; m = lerp(m, g, lerpWeight); v = v·β2 + (1−β2)·g·g;
 * param += negStepSize · m / (sqrt(v) / bc2Sqrt + eps)}.
 */
public record AdamStep(float lr, float beta1, float beta2, float eps, float weightDecay, int step) {
    public AdamStep {
        if (step < 1) {
            throw new IllegalArgumentException("argument step = " + step + ": must be >= 1 (the first update is step 1)");
        }
        if (!(beta1 >= 0.0f && beta1 < 1.0f)) {
            throw new IllegalArgumentException("argument beta1 = " + beta1 + ": must be in [0, 1)");
        }
        if (!(beta2 >= 0.0f && beta2 < 1.0f)) {
            throw new IllegalArgumentException("argument beta2 = " + beta2 + ": must be in [0, 1)");
        }
    }

    /** 1 − lr·wd: the decoupled weight decay, applied before the moments. */
    public float decay() {
        return (float) (1.0 - (double) lr * weightDecay);
    }

    /** 1 − β1, the weight of torch.lerp(m, g, ·). */
    public float lerpWeight() {
        return (float) (1.0 - beta1);
    }

    public float oneMinusBeta2() {
        return (float) (1.0 - beta2);
    }

    /** sqrt(1 − β2^step), the bias correction of v (the power in double: after thousands of steps it is near 1). */
    public float bc2Sqrt() {
        return (float) Math.sqrt(1.0 - Math.pow(beta2, step));
    }

    /** −lr / (1 − β1^step). */
    public float negStepSize() {
        return (float) (-(lr / (1.0 - Math.pow(beta1, step))));
    }
}
