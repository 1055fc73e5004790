package bitskip.spark;

import bitskip.model.ablation.AblationRunner;
import bitskip.model.ablation.RunExecutor;
import bitskip.model.ablation.RunFolder;
import bitskip.model.ablation.RunTask;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.io.Serializable;
import java.net.InetAddress;
import java.net.URISyntaxException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import org.apache.spark.SparkEnv;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaFutureAction;
import org.apache.spark.api.java.JavaSparkContext;

/**
 * The runs of an ablation as Spark tasks: one job of one task per run, all submitted at once, so the master
 * runs as many at a time as it has task slots, and a run that fails for good fails alone. Each task carries out
 * its {@link RunTask} on its executor, training and evaluating in child JVMs exactly as the process runner does,
 * in the run folder (which must be on a path every executor sees). A task whose executor is lost is retried
 * (spark.task.maxFailures, 4 unless set): the retry finds the folder's last checkpoint and resumes from it.
 * Runs already done are skipped here, before any task starts.
 */
final class SparkRuns implements RunExecutor {
    /** What a task sends back: whether the run finished, and its log lines. */
    record Outcome(boolean ok, String log) implements Serializable {}

    /** Twice the children's parent-watch poll (bitskip.model.cli.ParentWatch, 200 ms). */
    static final long ORPHAN_GRACE_MS = 400;

    private final String master;

    SparkRuns(String master) {
        this.master = master;
    }

    @Override
    public List<String> run(List<RunTask> tasks, AblationRunner.Java java, PrintStream log) throws Exception {
        Map<RunTask, String> todo = new LinkedHashMap<>();
        for (int i = 0; i < tasks.size(); i++) {
            RunTask t = tasks.get(i);
            String tag = "[" + (i + 1) + "/" + tasks.size() + "] " + t.id();
            if (RunFolder.isDone(t.folder())) {
                log.println(tag + ": done already, skipped");
            } else {
                todo.put(t, tag);
            }
        }
        List<String> failed = new ArrayList<>();
        if (todo.isEmpty()) {
            return failed;
        }
        try (JavaSparkContext sc = SparkContexts.open(master, "bitskip ablation", Map.of(), log)) {
            log.println("spark: " + todo.size() + " runs as tasks of " + master + " (application " + sc.sc().applicationId()
                    + ", spark.task.maxFailures " + sc.getConf().get("spark.task.maxFailures") + ")");
            Map<RunTask, JavaFutureAction<List<Outcome>>> jobs = new LinkedHashMap<>();
            for (Map.Entry<RunTask, String> e : todo.entrySet()) {
                String tag = e.getValue();
                sc.setJobDescription(e.getKey().id());
                jobs.put(e.getKey(), sc.parallelize(List.of(e.getKey()), 1).map(t -> carryOut(t, java, tag)).collectAsync());
            }
            // Each run's lines as soon as it ends.
            List<RunTask> open = new ArrayList<>(jobs.keySet());
            while (!open.isEmpty()) {
                for (RunTask t : new ArrayList<>(open)) {
                    JavaFutureAction<List<Outcome>> f = jobs.get(t);
                    if (!f.isDone()) {
                        continue;
                    }
                    open.remove(t);
                    try {
                        Outcome o = f.get().get(0);
                        log.print(o.log());
                        if (!o.ok()) {
                            failed.add(t.id());
                        }
                    } catch (ExecutionException e) {
                        log.println(todo.get(t) + ": its Spark task failed for good: " + e.getCause());
                        failed.add(t.id());
                    }
                }
                Thread.sleep(100);
            }
        }
        return failed;
    }

    /** On an executor: the run, with child JVMs started by this JVM's java and the jars Spark gave this executor. */
    static Outcome carryOut(RunTask t, AblationRunner.Java driverJava, String tag) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        PrintStream log = new PrintStream(buf, true, StandardCharsets.UTF_8);
        TaskContext ctx = TaskContext.get();
        String where = where();
        if (ctx != null && ctx.attemptNumber() > 0) {
            log.println(tag + ": attempt " + (ctx.attemptNumber() + 1) + " (an earlier attempt's executor was lost), on " + where);
            // The lost executor's children end within a poll of their parent watch: let them, before this attempt
            // takes over their folder.
            try {
                Thread.sleep(ORPHAN_GRACE_MS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return new Outcome(false, tag + ": interrupted\n");
            }
        }
        String java = ProcessHandle.current().info().command().orElse(driverJava.binary());
        AblationRunner.Java here = new AblationRunner.Java(java, driverJava.jvmArgs(), childClassPath(driverJava.classPath()));
        boolean ok;
        try {
            ok = t.execute(here, log, tag, where);
        } catch (Exception e) {
            log.println(tag + ": " + e);
            ok = false;
        }
        return new Outcome(ok, buf.toString(StandardCharsets.UTF_8));
    }

    private static String where() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (Exception e) {
            host = "?";
        }
        SparkEnv env = SparkEnv.get();
        return "spark executor " + (env == null ? "?" : env.executorId()) + " on " + host + " (pid " + ProcessHandle.current().pid() + ")";
    }

    /**
     * The class path of a run's child JVMs: the jars Spark fetched for this executor (spark.jars, on a cluster's
     * machine), else the driver's (the same machine: local[N], local-cluster, or a folder every node mounts).
     */
    static String childClassPath(String driverClassPath) {
        List<String> files = new ArrayList<>();
        if (Thread.currentThread().getContextClassLoader() instanceof URLClassLoader u) {
            for (URL url : u.getURLs()) {
                if (url.getProtocol().equals("file")) {
                    try {
                        files.add(Path.of(url.toURI()).toString());
                    } catch (URISyntaxException | IllegalArgumentException e) {
                        // not a local file: not for a child's class path
                    }
                }
            }
        }
        return files.isEmpty() ? driverClassPath : String.join(File.pathSeparator, files);
    }
}
