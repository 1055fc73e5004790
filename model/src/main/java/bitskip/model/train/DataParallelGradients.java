package bitskip.model.train;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Losses;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A step's gradients computed by the workers of a {@link GradientExchange}: this process draws the step's
 * micro-batches, cuts each into one contiguous shard per worker, sends the model's weights and the shards, and
 * puts the sum it gets back into the model's gradients (the trainer then clips and applies AdamW here, so the
 * optimizer's moments and the checkpoints stay in this process).
 */
public final class DataParallelGradients implements GradientSource {
    private final BitSkipConfig c;
    private final BatchSource data;
    private final GradientExchange exchange;
    private final int[] inputs, targets;

    public DataParallelGradients(BitSkipConfig c, BatchSource data, GradientExchange exchange) {
        Shards.check(c, exchange.workers());
        this.c = c;
        this.data = data;
        this.exchange = exchange;
        inputs = new int[c.batch() * c.ctx()];
        targets = new int[c.batch() * c.ctx()];
    }

    @Override
    public Losses compute(BitSkipModel model, int step) {
        int B = c.batch(), T = c.ctx(), n = exchange.workers();
        List<GradientExchange.Shard> shards = new ArrayList<>();
        int[][][] in = new int[n][c.accum()][], tg = new int[n][c.accum()][];
        for (int micro = 0; micro < c.accum(); micro++) {
            data.trainBatch(step, micro, B, inputs, targets);
            for (int w = 0; w < n; w++) {
                int first = Shards.first(B, n, w), count = Shards.first(B, n, w + 1) - first;
                in[w][micro] = Arrays.copyOfRange(inputs, first * T, (first + count) * T);
                tg[w][micro] = Arrays.copyOfRange(targets, first * T, (first + count) * T);
            }
        }
        for (int w = 0; w < n; w++) {
            int first = Shards.first(B, n, w);
            shards.add(new GradientExchange.Shard(step, first, Shards.first(B, n, w + 1) - first, in[w], tg[w]));
        }
        GradientExchange.Sum sum = exchange.sum(ShardWorker.Params.gather(model, false), shards);
        ShardWorker.Params.scatter(model, sum.grads(), true);
        return Shards.losses(sum.losses());
    }

    @Override
    public void close() {
        exchange.close();
    }
}
