package bitskip.spark;

import bitskip.model.train.GradientExchange;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;

/**
 * The data-parallel collective on Spark (MLlib's pattern): each step the driver broadcasts the weights, one task
 * per worker computes its shard's gradients on an executor, and {@code treeAggregate} sums them back to the
 * driver in a fixed order ({@link TreeSum}). Per step it keeps the exchange's wall time and the slowest worker's
 * time to get the weights and to compute; the rest of the wall time is scheduling, the results' transfer and
 * the sum.
 */
final class SparkExchange implements GradientExchange {
    private final JavaSparkContext sc;
    private final Workers.Spec spec;
    private final int n;
    /** Per step: wall, slowest broadcast fetch, slowest compute, slowest fetch + compute (seconds). */
    private final List<double[]> steps = new ArrayList<>();

    SparkExchange(JavaSparkContext sc, Workers.Spec spec, int workers) {
        this.sc = sc;
        this.spec = spec;
        this.n = workers;
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
                        long a = System.nanoTime();
                        float[] weightsHere = w.value();
                        long b = System.nanoTime();
                        Sum r = Workers.compute(spec, weightsHere, single(it));
                        return one(TreeSum.leaf(n, index, r, (b - a) / 1e9, (System.nanoTime() - b) / 1e9));
                    }, false)
                    .treeAggregate(TreeSum.empty(n), TreeSum::merge, TreeSum::merge, 2);
            double[] slowest = total.slowest();
            steps.add(new double[] {(System.nanoTime() - t0) / 1e9, slowest[0], slowest[1], slowest[2]});
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

    /**
     * The medians over the steps after the first (which makes the workers and warms the JIT up): wall,
     * slowest broadcast fetch, slowest compute, and wall minus the slowest fetch + compute.
     */
    double[] medians() {
        List<double[]> s = steps.size() > 1 ? steps.subList(1, steps.size()) : steps;
        double[] m = new double[4];
        for (int k = 0; k < 4; k++) {
            int col = k;
            double[] v = s.stream().mapToDouble(x -> col == 3 ? x[0] - x[3] : x[col]).sorted().toArray();
            m[k] = v.length == 0 ? Double.NaN : v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
        }
        return m;
    }

    String summary() {
        double[] m = medians();
        return String.format(Locale.ROOT, "data-parallel: %d steps on %d workers; median step after the first: %.3f s in the "
                        + "exchange = slowest worker %.3f s getting the weights + %.3f s computing, and %.3f s scheduling, "
                        + "returning the gradients and summing them", steps.size(), n, m[0], m[1], m[2], m[3]);
    }

    @Override
    public void close() {
        System.err.println(summary());
        Workers.close(spec.job());
        sc.stop();
    }
}
