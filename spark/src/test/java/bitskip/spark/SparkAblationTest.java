package bitskip.spark;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.model.ablation.AblationRunner;
import bitskip.model.cli.AblationCommand;
import bitskip.model.cli.Main;
import bitskip.model.config.Configs;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code bitskip ablation --spark MASTER}: the factorial run as Spark tasks writes the report the process runner
 * writes (same numbers: each run is the same child JVMs with the same threads), on local[2] and on a local-cluster
 * of two executor JVMs, one of which is killed while its run trains: the run is retried and resumes from its
 * last checkpoint.
 */
class SparkAblationTest {
    static final String[] IDS = {"paper-baseline", "paper-h-only", "paper-ee-only", "paper-bitskip"};

    static AblationRunner.Java childJava(Path cache) {
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        AblationRunner.Java cur = AblationRunner.Java.current();
        return new AblationRunner.Java(cur.binary(), List.of("--add-modules", "jdk.incubator.vector", "-Xmx512m",
                "-Dbitskip.cache=" + cache), cp);
    }

    static String[] args(Path out, Path train, Path valid, String... more) {
        List<String> a = new ArrayList<>(List.of("--preset", "micro", "--profile", "paper", "--steps", "12", "--out", out.toString(),
                "--threads", "1", "--batch", "2", "--accum", "1", "--eval-every", "3", "--eval-batches", "2",
                "--set", "vocab_size=50257", "--train", train.toString(), "--valid", valid.toString()));
        a.addAll(List.of(more));
        return a.toArray(new String[0]);
    }

    static int run(Path cache, ByteArrayOutputStream log, String[] args) {
        PrintStream old = System.err;
        System.setErr(new PrintStream(log, true));
        try {
            return Main.run(new AblationCommand().withJava(childJava(cache)), args);
        } finally {
            System.setErr(old);
        }
    }

    /** report.md with the output folder's path (in the header's command) replaced. */
    static String report(Path out) throws Exception {
        return Files.readString(out.resolve("report.md")).replace(out.toString(), "OUT");
    }

    @TempDir
    static Path shared;
    private static String expected;

    static Path[] data() throws Exception {
        Path train = shared.resolve("train.txt");
        return Files.exists(train) ? new Path[] {train, shared.resolve("valid.txt")} : DataParallelTest.text(shared);
    }

    /** The process runner's report (made once for both tests). */
    static synchronized String expected() throws Exception {
        if (expected == null) {
            Path[] data = data();
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            Path processes = shared.resolve("processes");
            assertEquals(0, run(shared.resolve("cache"), log, args(processes, data[0], data[1], "--parallel", "2")), log.toString());
            expected = report(processes);
            assertTrue(expected.contains("Table 2") && expected.contains("--threads 1"), expected);
            assertFalse(expected.contains("--parallel"), "execution-only flags are not in the report's command");
        }
        return expected;
    }

    @Test
    void onLocal2TheRunsWriteTheProcessRunnersReportAndAreSkippedOnRestart(@TempDir Path tmp) throws Exception {
        Path[] data = data();
        Path cache = shared.resolve("cache");
        Path local = tmp.resolve("local");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        assertEquals(0, run(cache, log, args(local, data[0], data[1], "--spark", "local[2]")), log.toString());
        assertTrue(log.toString().contains("spark: 4 runs as tasks of local[2]"), log.toString());
        assertEquals(expected(), report(local), "local[2] and the process runner write different reports");
        for (String id : IDS) {
            String by = Configs.JSON.readTree(local.resolve("runs").resolve(id).resolve("done.json").toFile()).get("executed_by").asText();
            assertTrue(by.startsWith("spark executor driver"), by);
        }
        log.reset();
        assertEquals(0, run(cache, log, args(local, data[0], data[1], "--spark", "local[2]")), log.toString());
        assertEquals(4, log.toString().lines().filter(l -> l.contains("done already, skipped")).count(), log.toString());
        assertFalse(log.toString().contains("runs as tasks"), "a restart with every run done starts no Spark job:\n" + log);
    }

    @Test
    void onALocalClusterAKilledExecutorsRunIsRetriedAndResumes(@TempDir Path tmp) throws Exception {
        Optional<String> skip = LocalCluster.skipReason();
        if (skip.isPresent()) {
            abort("local-cluster: " + skip.get());
        }
        Path[] data = data();
        Path cluster = tmp.resolve("cluster");
        AtomicReference<String> killed = new AtomicReference<>();
        Thread killer = new Thread(() -> killed.set(killAnExecutorAfterItsRunsFirstCheckpoint(cluster)));
        killer.start();
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        int rc = run(shared.resolve("cache"), log, args(cluster, data[0], data[1], "--spark", LocalCluster.MASTER));
        killer.interrupt();
        killer.join();
        assertEquals(0, rc, log.toString());
        assertNotNull(killed.get(), "no executor was killed while its run trained\n" + log);
        String id = killed.get();
        assertTrue(log.toString().contains(id + ": attempt 2"), "the killed executor's run was not retried:\n" + log);
        String trainLog = Files.readString(cluster.resolve("runs").resolve(id).resolve("train.log"));
        assertTrue(trainLog.matches("(?s).*resuming .* at step [1-9][0-9]* from .*"), "the retry did not resume:\n" + trainLog);
        assertTrue(trainLog.contains("is gone; exiting"), "the killed executor's child did not end with it:\n" + trainLog);
        assertEquals(expected(), report(cluster), "a local-cluster with a killed executor and the process runner write different reports");
    }

    /**
     * Waits for the first run with a checkpoint, then kills (SIGKILL) the executor JVM whose child trains it;
     * returns that run's id, or null if none was found in time.
     */
    static String killAnExecutorAfterItsRunsFirstCheckpoint(Path out) {
        long deadline = System.nanoTime() + 600_000_000_000L;
        while (System.nanoTime() < deadline && !Thread.currentThread().isInterrupted()) {
            for (String id : IDS) {
                Path dir = out.resolve("runs").resolve(id);
                if (!Files.isRegularFile(dir.resolve("last").resolve("state.json")) || Files.exists(dir.resolve("done.json"))) {
                    continue;
                }
                Optional<ProcessHandle> child = ProcessHandle.allProcesses().filter(p -> {
                    String c = commandLine(p);
                    return c.contains("BitSkipTrain") && c.contains(dir.toString());
                }).findFirst();
                Optional<ProcessHandle> executor = child.flatMap(ProcessHandle::parent)
                        .filter(p -> commandLine(p).contains("CoarseGrainedExecutorBackend"));
                if (executor.isPresent()) {
                    executor.get().destroyForcibly();
                    return id;
                }
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                return null;
            }
        }
        return null;
    }

    /** The whole command line (ProcessHandle.Info cuts long ones short; these hold the test class path). */
    static String commandLine(ProcessHandle p) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(p.pid()), "cmdline")).replace('\0', ' ');
        } catch (Exception e) {
            return p.info().commandLine().orElse("");
        }
    }
}
