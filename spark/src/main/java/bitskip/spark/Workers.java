package bitskip.spark;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.engine.cpu.CpuBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.train.GradientExchange;
import bitskip.model.train.ShardWorker;
import java.io.Serializable;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The data-parallel workers of this JVM (an executor, or the driver under local[N]), kept between steps: a
 * model is planned once, not once per step. A task borrows an idle worker of its job (or makes one), so a JVM
 * that runs k tasks at once holds k workers, whichever shards it is given.
 */
final class Workers {
    /** What an executor needs to make a worker: the configuration (as JSON), the backend and its threads. */
    record Spec(String job, String configJson, String backend, int threads, int maxShard) implements Serializable {}

    private static final Map<String, ConcurrentLinkedQueue<ShardWorker>> IDLE = new ConcurrentHashMap<>();

    private Workers() {}

    /** Computes shard s with weights on an idle worker of spec's job. */
    static GradientExchange.Sum compute(Spec spec, float[] weights, GradientExchange.Shard s) {
        ConcurrentLinkedQueue<ShardWorker> idle = IDLE.computeIfAbsent(spec.job(), k -> new ConcurrentLinkedQueue<>());
        ShardWorker w = idle.poll();
        if (w == null) {
            w = create(spec);
        }
        try {
            return w.compute(weights, s);
        } finally {
            idle.add(w);
        }
    }

    private static ShardWorker create(Spec spec) {
        BitSkipConfig c = Configs.fromJson(spec.configJson(), "the driver's configuration");
        Backend be = spec.threads() > 0 && spec.backend().equals("cpu")
                ? new CpuBackend(spec.threads(), !"false".equalsIgnoreCase(System.getProperty(CpuBackend.VECTOR_PROPERTY, "true")))
                : Backends.create(spec.backend());
        be.usePrecision(bitskip.engine.Precision.parse(c.precision())); // the driver's number format, on every shard
        return new ShardWorker(c, be, spec.maxShard());
    }

    /** Closes the workers of job in this JVM (under local[N], all of them; executors of a cluster end with the application). */
    static void close(String job) {
        ConcurrentLinkedQueue<ShardWorker> idle = IDLE.remove(job);
        if (idle != null) {
            for (ShardWorker w : idle) {
                w.close();
            }
        }
    }
}
