package bitskip.spark;

import java.io.PrintStream;
import java.util.Map;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * The SparkContext of one command. Its configuration starts from the {@code spark.*} system properties
 * ({@code BITSKIP_JAVA_OPTS="-Dspark.executor.memory=6g" ./bitskip ...}), so anything Spark can be told is told
 * that way; the defaults here apply only where nothing was set.
 */
final class SparkContexts {
    /**
     * The jars executors on other machines need (this project's and its dependencies', not Spark's), separated
     * by the path separator; ./bitskip sets it. Spark ships them to each executor ({@code spark.jars}).
     */
    static final String APP_JARS = "bitskip.spark.jars";

    private SparkContexts() {}

    static JavaSparkContext open(String master, String app, Map<String, String> defaults, PrintStream log) {
        SparkConf conf = new SparkConf().setMaster(master).setAppName(app);
        // A task whose executor died (killed, lost with its machine) is tried again, up to 3 more times.
        conf.setIfMissing("spark.task.maxFailures", "4");
        if (Masters.onThisMachine(master)) {
            conf.setIfMissing("spark.driver.host", "127.0.0.1");
            conf.setIfMissing("spark.driver.bindAddress", "127.0.0.1");
        } else if (!conf.contains("spark.jars")) {
            String jars = System.getProperty(APP_JARS);
            if (jars != null && !jars.isBlank()) {
                conf.set("spark.jars", String.join(",", jars.split(java.io.File.pathSeparator)));
            } else {
                log.println("spark: -D" + APP_JARS + " is not set (./bitskip sets it): the executors of " + master
                        + " must already have the bitskip jars on their class path (spark.jars or spark.executor.extraClassPath)");
            }
        }
        // OpenBLAS threads that spin after each sgemm take the cores from the Java threads (see the launcher).
        String spin = System.getenv("OPENBLAS_THREAD_TIMEOUT");
        if (spin != null) {
            conf.setIfMissing("spark.executorEnv.OPENBLAS_THREAD_TIMEOUT", spin);
        }
        defaults.forEach(conf::setIfMissing);
        JavaSparkContext sc = new JavaSparkContext(conf);
        sc.setLogLevel(System.getProperty("bitskip.spark.logLevel", "WARN"));
        return sc;
    }
}
