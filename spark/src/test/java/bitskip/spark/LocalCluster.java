package bitskip.spark;

import bitskip.engine.Requirements;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.jar.JarFile;
import java.util.jar.Manifest;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * A Spark local-cluster for the tests: a master and workers inside the test JVM, each worker starting its
 * executor as a JVM of its own, as on a real cluster. What it needs besides Spark's jars: SPARK_HOME (the
 * module's pom sets it to target/spark-home) holding jars/ (links to the test class path's jars) and an empty
 * RELEASE file, SPARK_SCALA_VERSION=2.13, and the executors' class path (spark.executor.extraClassPath: the
 * test class path, classes folders included).
 */
final class LocalCluster {
    static final String MASTER = "local-cluster[2,1,1024]";
    private static String unavailable;
    private static boolean checked;

    private LocalCluster() {}

    /** Empty when a two-executor local-cluster runs here; else the reason (or a failure, when "spark" is required). */
    static synchronized Optional<String> skipReason() {
        if (!checked) {
            checked = true;
            unavailable = prepare();
        }
        return Requirements.skipOrFail("spark", unavailable);
    }

    private static String prepare() {
        String home = System.getenv("SPARK_HOME");
        if (home == null || home.isBlank()) {
            return "SPARK_HOME is not set (the spark module's Surefire configuration sets it; run the tests with Maven)";
        }
        if (!"2.13".equals(System.getenv("SPARK_SCALA_VERSION"))) {
            return "SPARK_SCALA_VERSION is not 2.13";
        }
        try {
            Set<String> cp = classPath();
            Path jars = Files.createDirectories(Path.of(home, "jars"));
            for (String e : cp) {
                Path p = Path.of(e);
                Path link = jars.resolve(p.getFileName());
                if (e.endsWith(".jar") && Files.isRegularFile(p) && !Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                    Files.createSymbolicLink(link, p.toAbsolutePath());
                }
            }
            if (!Files.exists(Path.of(home, "RELEASE"))) {
                Files.createFile(Path.of(home, "RELEASE"));
            }
            System.setProperty("spark.executor.extraClassPath", String.join(File.pathSeparator, cp));
        } catch (IOException | RuntimeException e) {
            return "cannot lay out SPARK_HOME " + home + ": " + e;
        }
        // Start it once: executors that cannot start (ports, memory) leave jobs waiting forever, not failing.
        System.setProperty("spark.executor.memory", "1g");
        try (JavaSparkContext sc = SparkContexts.open(MASTER, "bitskip local-cluster check", Map.of(), System.err)) {
            long deadline = System.nanoTime() + 90_000_000_000L;
            while (sc.sc().getExecutorMemoryStatus().size() < 3) { // the driver and two executors
                if (System.nanoTime() > deadline) {
                    return MASTER + ": its two executors did not register within 90 s";
                }
                Thread.sleep(200);
            }
            int sum = sc.parallelize(java.util.List.of(1, 2, 3, 4), 2).reduce(Integer::sum);
            if (sum != 10) {
                return MASTER + ": a test job returned " + sum;
            }
        } catch (Exception e) {
            return MASTER + " does not start: " + e;
        }
        return null;
    }

    /** The test class path, entry by entry (Surefire's manifest-only jar expanded). */
    static Set<String> classPath() throws IOException {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        Set<String> out = new LinkedHashSet<>();
        String[] entries = cp.split(File.pathSeparator);
        for (String e : entries) {
            if (!e.isBlank()) {
                out.add(e);
            }
        }
        // A class path of one jar is Surefire's manifest-only jar: the class path is in its manifest.
        if (entries.length == 1 && entries[0].endsWith(".jar")) {
            try (JarFile j = new JarFile(entries[0])) {
                Manifest m = j.getManifest();
                String more = m == null ? null : m.getMainAttributes().getValue("Class-Path");
                for (String u : more == null ? new String[0] : more.split(" ")) {
                    if (u.startsWith("file:")) {
                        out.add(Path.of(java.net.URI.create(u)).toString());
                    }
                }
            }
        }
        return out;
    }
}
