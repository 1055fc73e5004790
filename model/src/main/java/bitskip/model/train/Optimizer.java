package bitskip.model.train;

import bitskip.engine.AdamStep;
import bitskip.engine.Backend;
import bitskip.kernels.GradClip;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;
import java.util.List;

/**
 * One optimizer step over every parameter, as {@code torch.nn.utils.clip_grad_norm_} then
 * {@code torch.optim.AdamW} do it: the global gradient norm is clipped to grad_clip, then AdamW (betas,
 * eps and weight decay from the config; decay on every parameter) updates the weights.
 */
public final class Optimizer {
    private Optimizer() {}

    /** Clips, updates, and returns the gradient norm before clipping. adamStep counts from 1. */
    public static double step(BitSkipModel model, float lr, int adamStep) {
        double sumSq = gradSumSquares(model);
        update(model, lr, adamStep, sumSq);
        return Math.sqrt(sumSq);
    }

    /** The squared global gradient norm (its square root is what the metrics log as grad_norm). */
    public static double gradSumSquares(BitSkipModel model) {
        Backend be = model.backend();
        double sumSq = 0;
        for (Param p : model.params().all()) {
            sumSq += be.sumSquares(p.grad, p.size);
        }
        return sumSq;
    }

    /** Clips the gradients whose squared global norm is sumSq, then updates every parameter. */
    public static void update(BitSkipModel model, float lr, int adamStep, double sumSq) {
        Backend be = model.backend();
        BitSkipConfig c = model.config;
        List<Param> ps = model.params().all();
        float factor = GradClip.clipFactor(sumSq, c.gradClip());
        AdamStep step = new AdamStep(lr, c.beta1(), c.beta2(), c.adamEps(), c.weightDecay(), adamStep);
        for (Param p : ps) {
            if (factor < 1.0f) {
                be.scale(p.grad, p.size, factor);
            }
            be.adamW(p.value, p.grad, p.m(be), p.v(be), p.size, step);
        }
    }
}
