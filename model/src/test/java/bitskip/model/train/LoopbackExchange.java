package bitskip.model.train;

import bitskip.engine.JavaBackend;
import bitskip.model.config.BitSkipConfig;
import java.util.List;

/** An exchange whose N workers run one after the other in this process, summed in worker order: the tests' collective. */
final class LoopbackExchange implements GradientExchange {
    private final ShardWorker[] workers;

    LoopbackExchange(BitSkipConfig c, int n) {
        workers = new ShardWorker[n];
        for (int w = 0; w < n; w++) {
            workers[w] = new ShardWorker(c, new JavaBackend(), Shards.first(c.batch(), n, 1) + 1);
        }
    }

    @Override
    public int workers() {
        return workers.length;
    }

    @Override
    public Sum sum(float[] weights, List<Shard> shards) {
        Sum total = null;
        for (int w = 0; w < workers.length; w++) {
            Sum s = workers[w].compute(weights, shards.get(w));
            if (total == null) {
                total = s;
                continue;
            }
            for (int i = 0; i < s.grads().length; i++) {
                total.grads()[i] += s.grads()[i];
            }
            for (int i = 0; i < s.losses().length; i++) {
                total.losses()[i] += s.losses()[i];
            }
        }
        return total;
    }
}
