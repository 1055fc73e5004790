package bitskip.model.cli;

import bitskip.model.ablation.RunTask;
import java.util.Optional;

/**
 * Ends this JVM when the process that started it is gone, if asked to with {@code -Dbitskip.exitWithParent=true}
 * (what the ablation gives its children). A child JVM outlives a parent killed with SIGKILL, and a cluster
 * retries a killed executor's run in the same folder: the orphan training must not race the retry. A user's
 * own {@code BitSkipTrain} under nohup is not asked, so it keeps running after its shell exits.
 */
final class ParentWatch {
    static final long POLL_MS = 200;

    private ParentWatch() {}

    static void startIfAsked() {
        if (!Boolean.getBoolean(RunTask.EXIT_WITH_PARENT)) {
            return;
        }
        Optional<ProcessHandle> parent = ProcessHandle.current().parent();
        if (parent.isEmpty()) {
            return;
        }
        ProcessHandle p = parent.get();
        Thread t = new Thread(() -> {
            while (p.isAlive()) {
                try {
                    Thread.sleep(POLL_MS);
                } catch (InterruptedException e) {
                    return;
                }
            }
            System.err.println("bitskip: the process that started this one (pid " + p.pid() + ") is gone; exiting");
            Runtime.getRuntime().halt(143);
        }, "bitskip-parent-watch");
        t.setDaemon(true);
        t.start();
    }
}
