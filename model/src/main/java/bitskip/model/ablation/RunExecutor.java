package bitskip.model.ablation;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * How the runs of an ablation are carried out: as child processes of this JVM ({@link #processes}), or as the
 * tasks of a cluster (the spark module). Either way each {@link RunTask} writes only its own run folder, so the
 * report, made from the folders afterwards, does not depend on how the runs were executed.
 */
public interface RunExecutor {

    /** Carries out every task (one marked done is skipped); returns the ids of those that failed. */
    List<String> run(List<RunTask> tasks, AblationRunner.Java java, PrintStream log) throws Exception;

    /** Up to parallel runs at once, each as child processes of this JVM. */
    static RunExecutor processes(int parallel) {
        return (tasks, java, log) -> {
            List<String> failed = Collections.synchronizedList(new ArrayList<>());
            AtomicInteger n = new AtomicInteger();
            ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, parallel));
            try {
                List<Future<?>> fs = new ArrayList<>();
                for (RunTask t : tasks) {
                    fs.add(pool.submit(() -> {
                        String tag = "[" + n.incrementAndGet() + "/" + tasks.size() + "] " + t.id();
                        try {
                            if (!t.execute(java, log, tag, "process")) {
                                failed.add(t.id());
                            }
                        } catch (Exception e) {
                            log.println(tag + ": " + e);
                            failed.add(t.id());
                        }
                        return null;
                    }));
                }
                for (Future<?> f : fs) {
                    f.get();
                }
            } finally {
                pool.shutdown();
            }
            return failed;
        };
    }
}
