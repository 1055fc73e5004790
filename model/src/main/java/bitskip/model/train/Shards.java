package bitskip.model.train;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Losses;

/**
 * The arithmetic of a data-parallel step, the same in one process (one shard: the whole batch) and in N
 * workers. Worker w of N trains the contiguous samples [first(w), first(w + 1)) of every micro-batch of B.
 * Everything random is keyed by the global sample index ({@link Randomness#skipMask(BitSkipConfig, long, int,
 * int, int, int, int)}, the dropout counters of {@link BitSkipModel#trainStep(int[], int[], int, int[][], long,
 * float, long)}), and each shard's gradients and losses are scaled by its share count/B of the batch, so that
 * the sum over the workers is what one process computes on the whole batch up to the order of the float sums:
 * the cross-entropy is normalized by the global token count (a shard's mean over its count·T tokens times
 * count/B), and the terms that do not depend on the samples (the quantization loss) are counted once in total.
 *
 * <p>The one term this cannot split is the authors' batch-mean routing loss ({@code route_loss=batch_mean},
 * the {@code reference} profile): it squares the mean of lbar over the whole batch, which no shard knows, so
 * {@link #check} refuses it.
 */
public final class Shards {
    /** The loss terms a shard adds up: task, ee, quant, route, total (as in {@link Losses}). */
    public static final int LOSS_TERMS = 5;

    private Shards() {}

    /** The first sample of worker w of n in a batch of B (sizes differ by at most one; first(B, n, n) = B). */
    public static int first(int B, int n, int w) {
        return (int) ((long) B * w / n);
    }

    /** Refuses a data-parallel run whose result would not be one process's on the same global batch. */
    public static void check(BitSkipConfig c, int workers) {
        if (workers < 1) {
            throw new IllegalArgumentException("--data-parallel must be >= 1, got " + workers);
        }
        if (workers > c.batch()) {
            throw new IllegalArgumentException("--data-parallel " + workers + " needs a batch of at least " + workers
                    + " sequences (one per worker), got batch " + c.batch());
        }
        if (c.routeLoss().equals("batch_mean")) {
            throw new IllegalArgumentException("configuration field route_loss = batch_mean (the reference profile's) squares "
                    + "the mean expected exit layer of the whole batch, which a worker's shard cannot compute; "
                    + "train with --set route_loss=per_token, or without --data-parallel");
        }
    }

    /**
     * Forward and backward of samples [first, first + count) of micro-batch {@code micro} of a step whose batch
     * is B sequences: inputs and targets hold those count·T tokens. Accumulates their share of the step's
     * gradient into the model and adds their share of each loss term to sums; returns these samples' losses.
     */
    public static Losses micro(BitSkipModel model, BitSkipConfig c, int step, int micro, int[] inputs, int[] targets,
                             int first, int count, double[] sums) {
        int B = c.batch();
        int[][] skip = Randomness.skipMask(c, c.seed(), step, micro, B, first, count);
        float scale = (float) count / B / c.accum();
        Losses l = model.trainStep(inputs, targets, count, skip, Randomness.dropoutSeed(c.seed(), step, micro), scale, first);
        double share = (double) count / B;
        sums[0] += l.task() / c.accum() * share;
        sums[1] += l.ee() / c.accum() * share;
        sums[2] += l.quant() / c.accum() * share;
        sums[3] += l.route() / c.accum() * share;
        sums[4] += l.total() / c.accum() * share;
        return l;
    }

    /** The step's losses from the summed terms. */
    public static Losses losses(double[] sums) {
        return new Losses(sums[0], sums[1], sums[2], sums[3], sums[4], new double[0]);
    }
}
