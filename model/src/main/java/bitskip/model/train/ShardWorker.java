package bitskip.model.train;

import bitskip.engine.Backend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;

/**
 * A data-parallel worker: a model of the run's configuration on its own backend, planned for one shard. Each
 * step it takes the driver's weights, trains its shard of every micro-batch ({@link Shards#micro}) and returns
 * the gradients and loss terms of its share of the batch. It keeps no state between steps but the buffers, so
 * any worker can take any shard.
 */
public final class ShardWorker implements AutoCloseable {
    private final BitSkipConfig c;
    private final Backend be;
    private final BitSkipModel model;

    /** maxCount: the largest shard this worker will be given. Closes be when closed. */
    public ShardWorker(BitSkipConfig c, Backend be, int maxCount) {
        this.c = c;
        this.be = be;
        this.model = new BitSkipModel(c, be, maxCount);
    }

    public GradientExchange.Sum compute(float[] weights, GradientExchange.Shard s) {
        Params.scatter(model, weights, false);
        model.zeroGrads();
        double[] losses = new double[Shards.LOSS_TERMS];
        for (int micro = 0; micro < c.accum(); micro++) {
            Shards.micro(model, c, s.step(), micro, s.inputs()[micro], s.targets()[micro], s.first(), s.count(), losses);
        }
        return new GradientExchange.Sum(Params.gather(model, true), losses);
    }

    @Override
    public void close() {
        be.close();
    }

    /** Every parameter's values or gradients as one vector, in the model's parameter order, and back. */
    public static final class Params {
        private Params() {}

        public static float[] gather(BitSkipModel m, boolean grads) {
            float[] all = new float[Math.toIntExact(m.params().count())];
            int at = 0;
            for (Param p : m.params().all()) {
                float[] part = new float[p.size];
                m.backend().download(grads ? p.grad : p.value, part);
                System.arraycopy(part, 0, all, at, p.size);
                at += p.size;
            }
            return all;
        }

        public static void scatter(BitSkipModel m, float[] all, boolean grads) {
            if (all.length != m.params().count()) {
                throw new IllegalArgumentException("a vector of " + all.length + " floats for a model of "
                        + m.params().count() + " parameters");
            }
            int at = 0;
            for (Param p : m.params().all()) {
                float[] part = new float[p.size];
                System.arraycopy(all, at, part, 0, p.size);
                m.backend().upload(grads ? p.grad : p.value, part);
                at += p.size;
            }
        }
    }
}
