package bitskip.model.train;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Losses;

/** A step's gradients computed in this process: every micro-batch of the step, the whole batch at once. */
public final class LocalGradients implements GradientSource {
    private final BitSkipConfig c;
    private final BatchSource data;
    private final int[] inputs, targets;

    public LocalGradients(BitSkipConfig c, BatchSource data) {
        this.c = c;
        this.data = data;
        inputs = new int[c.batch() * c.ctx()];
        targets = new int[c.batch() * c.ctx()];
    }

    @Override
    public Losses compute(BitSkipModel model, int step) {
        int B = c.batch();
        model.zeroGrads();
        double[] sums = new double[Shards.LOSS_TERMS];
        for (int micro = 0; micro < c.accum(); micro++) {
            data.trainBatch(step, micro, B, inputs, targets);
            Losses l = Shards.micro(model, c, step, micro, inputs, targets, 0, B, sums);
            if (!Double.isFinite(l.total())) {
                throw new NonFiniteLoss("the training loss" + (c.accum() > 1 ? " of micro-batch " + (micro + 1) + " of "
                        + c.accum() : "") + " is " + l.total());
            }
        }
        return Shards.losses(sums);
    }
}
