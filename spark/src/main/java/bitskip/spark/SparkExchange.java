package bitskip.spark;

import bitskip.model.train.GradientExchange;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

/**
 * The data-parallel collective on Spark (MLlib's pattern): each step the driver broadcasts the weights, one task
 * per worker computes its shard's gradients on an executor, and {@code treeAggregate} sums them back to the
 * driver in a fixed order ({@link TreeSum}). It keeps, per step, the wall time of the exchange and the longest
 * worker's compute time; their difference is what the step spent on communication and scheduling.
 */
final class SparkExchange implements GradientExchange {
    private final JavaSparkContext sc;
    private final Workers.Spec spec;
    private final int n;
    private final boolean ownsContext;
    private int steps;
    private double wallSeconds, computeSeconds;
    private double lastWall, lastCompute;

    SparkExchange(JavaSparkContext sc, Workers.Spec spec, int workers, boolean ownsContext) {
        this.sc = sc;
        this.spec = spec;
        this.n = workers;
        this.ownsContext = ownsContext;
    }

    @Override
    public int workers() {
        return n;
    }

    @Override
    public Sum sum(float[] weights, List<Shard> shards) {
        if (shards.size() != n) {
            throw new IllegalArgumentException(shards.size() + " shards for " + n + " workers");
        }
        long t0 = System.nanoTime();
        Broadcast<float[]> w = sc.broadcast(weights);
        Workers.Spec spec = this.spec;
        int n = this.n;
        try {
            TreeSum total = sc.parallelize(shards, n)
                    .mapPartitionsWithIndex((index, it) -> {
                        double[] seconds = new double[1];
                        Sum r = Workers.compute(spec, w.value(), single(it), seconds);
                        return one(TreeSum.leaf(n, index, r, seconds[0]));
                    }, false)
                    .treeAggregate(TreeSum.empty(n), TreeSum::merge, TreeSum::merge, 2);
            lastWall = (System.nanoTime() - t0) / 1e9;
            lastCompute = total.maxComputeSeconds();
            steps++;
            wallSeconds += lastWall;
            computeSeconds += lastCompute;
            return total.result();
        } finally {
            w.destroy();
        }
    }

    /** The one shard of a partition (parallelize gives each of the n partitions one of the n shards). */
    private static Shard single(Iterator<Shard> it) {
        Shard s = it.next();
        if (it.hasNext()) {
            throw new IllegalStateException("a partition with more than one shard");
        }
        return s;
    }

    private static Iterator<TreeSum> one(TreeSum t) {
        return Collections.singletonList(t).iterator();
    }

    /** Seconds of the last step: the exchange's wall time and the longest worker's compute time. */
    double[] lastStep() {
        return new double[] {lastWall, lastCompute};
    }

    String summary() {
        if (steps == 0) {
            return "data-parallel: no steps";
        }
        return String.format(Locale.ROOT, "data-parallel: %d steps on %d workers; per step %.3f s in the exchange, of which "
                        + "%.3f s the slowest worker's compute and %.3f s broadcast, scheduling, result transfer and the sum",
                steps, n, wallSeconds / steps, computeSeconds / steps, (wallSeconds - computeSeconds) / steps);
    }

    @Override
    public void close() {
        System.err.println(summary());
        Workers.close(spec.job());
        if (ownsContext) {
            sc.stop();
        }
    }
}
