package bitskip.model.train;

import bitskip.model.config.BitSkipConfig;

/**
 * The learning rate at each optimizer step (0-based): linear warmup over {@code warmup} steps, then either
 * warmup–stable–decay (constant, then linear to 0 over the last decay_frac of the run; the paper) or a
 * cosine to 0 at the last step (the authors' code).
 */
public final class Schedule {
    private final float lr;
    private final int warmup;
    private final int steps;
    private final boolean cosine;
    private final float decayFrac;

    public Schedule(BitSkipConfig c) {
        this.lr = c.lr();
        this.warmup = c.resolvedWarmup();
        this.steps = c.steps();
        this.cosine = c.schedule().equals("cosine");
        this.decayFrac = c.decayFrac();
    }

    public float lr(int step) {
        if (step < warmup) {
            return lr * (step + 1) / warmup;
        }
        if (cosine) {
            double progress = (double) (step - warmup) / Math.max(1, steps - warmup);
            return (float) (lr * 0.5 * (1.0 + Math.cos(Math.PI * Math.min(1.0, progress))));
        }
        int decaySteps = Math.round(decayFrac * steps);
        int decayStart = steps - decaySteps;
        if (decaySteps == 0 || step < decayStart) {
            return lr;
        }
        return (float) (lr * (double) (steps - step) / decaySteps);
    }
}
