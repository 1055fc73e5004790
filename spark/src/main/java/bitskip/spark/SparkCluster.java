package bitskip.spark;

import bitskip.model.ablation.RunExecutor;
import bitskip.model.cluster.Cluster;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.train.GradientExchange;
import java.util.Map;
import java.util.UUID;
import org.apache.spark.api.java.JavaSparkContext;

/** {@code --spark MASTER}: Apache Spark as the cluster of the ablation's runs and of data-parallel training. */
public final class SparkCluster implements Cluster {

    @Override
    public String name() {
        return "spark";
    }

    @Override
    public int tasksPerMachine(String master) {
        return Masters.tasksPerMachine(master, Runtime.getRuntime().availableProcessors());
    }

    @Override
    public RunExecutor runs(String master) {
        return new SparkRuns(master);
    }

    @Override
    public GradientExchange exchange(String master, int workers, BitSkipConfig c, String backend, int threads) {
        // Every step's results are n gradient vectors of the whole model (paper-85m: 348 MB each), past Spark's 1 GB
        // default cap on what an action returns; the driver holds them anyway.
        JavaSparkContext sc = SparkContexts.open(master, "bitskip train --data-parallel " + workers,
                Map.of("spark.driver.maxResultSize", "0"), System.err);
        if (!Masters.inThisJvm(master)) {
            System.err.println("spark: executors have " + sc.getConf().get("spark.executor.memory", "1g")
                    + " of memory (spark.executor.memory): tiny fits in 1g; paper-85m needs several GB");
        }
        int maxShard = (c.batch() + workers - 1) / workers;
        Workers.Spec spec = new Workers.Spec(UUID.randomUUID().toString(), Configs.toJson(c), backend, threads, maxShard);
        return new SparkExchange(sc, spec, workers);
    }
}
