package bitskip.model.ablation;

import bitskip.model.cli.ExitCodes;
import bitskip.model.config.Configs;
import bitskip.model.io.AtomicFiles;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintStream;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One run of an ablation as a self-contained piece of work that any process on any machine that sees the run
 * folder can carry out: train ({@code BitSkipTrain}, resuming from the folder's checkpoint if it has one), then
 * evaluate the best checkpoint ({@code BitSkipEval}), then mark the folder done. A folder marked done is
 * skipped, so carrying out a task twice (a restart, a retried cluster task) does the work once.
 *
 * @param dir       the run folder (a string: this record travels to other JVMs)
 * @param trainArgs the train command's arguments, with --out dir, without --resume
 */
public record RunTask(String id, String group, String profile, String variant, int steps, String dir,
                      List<String> trainArgs, List<String> evalArgs) implements Serializable {

    /** A child asked to end with this property ends when the process that started it is gone (see ParentWatch). */
    public static final String EXIT_WITH_PARENT = "bitskip.exitWithParent";

    public RunTask {
        trainArgs = List.copyOf(trainArgs);
        evalArgs = List.copyOf(evalArgs);
    }

    public Path folder() {
        return Path.of(dir);
    }

    /**
     * Carries the run out with child JVMs started as java says, logging to log under tag; returns whether it
     * finished (done already counts). where names the process that did the work, for done.json.
     */
    public boolean execute(AblationRunner.Java java, PrintStream log, String tag, String where) throws Exception {
        Path d = folder();
        if (RunFolder.isDone(d)) {
            log.println(tag + ": done already, skipped");
            return true;
        }
        Files.createDirectories(d);
        // The children die with the JVM that started them: a killed cluster executor leaves no training behind
        // to race the retried task for the same folder.
        AblationRunner.Java child = java.withJvmArg("-D" + EXIT_WITH_PARENT + "=true");
        List<String> args = new ArrayList<>(trainArgs);
        // a folder that holds a run (killed before or after its first checkpoint) is continued, never replaced
        boolean resume = RunFolder.holdsRun(d);
        if (resume) {
            args.add("--resume");
        }
        log.println(tag + ": " + (resume ? "resuming" : "training") + " (log " + d.resolve("train.log") + ")");
        long t0 = System.nanoTime();
        int rc = exec(child.command("BitSkipTrain", args), d.resolve("train.log"));
        double trainS = (System.nanoTime() - t0) / 1e9;
        if (rc != 0) {
            log.println(tag + ": training failed with exit code " + rc + (rc == ExitCodes.FOLDER_IN_USE ? " (its folder is in use by another run)"
                    : rc == ExitCodes.NON_FINITE ? " (a NaN or an infinity stopped it)" : rc == ExitCodes.BAD_INPUT ? " (bad input)" : "")
                    + "; see " + d.resolve("train.log"));
            return false;
        }
        t0 = System.nanoTime();
        rc = exec(child.command("BitSkipEval", evalArgs), d.resolve("eval.log"));
        double evalS = (System.nanoTime() - t0) / 1e9;
        if (rc != 0) {
            log.println(tag + ": evaluation failed with exit code " + rc + "; see " + d.resolve("eval.log"));
            return false;
        }
        RunFolder f = RunFolder.read(d);
        double[] best = f.best(), last = f.last();
        ObjectNode o = Configs.JSON.createObjectNode();
        o.put("id", id);
        o.put("group", group);
        o.put("profile", profile);
        o.put("variant", variant);
        o.put("best_val_ppl", best == null ? Double.NaN : best[1]);
        o.put("best_step", best == null ? -1 : (int) best[0]);
        o.put("final_val_ppl", last == null ? Double.NaN : last[1]);
        o.put("last_step", f.lastStep());
        o.put("stopped_early", f.lastStep() < steps);
        o.put("train_seconds", Math.round(trainS * 10) / 10.0);
        o.put("eval_seconds", Math.round(evalS * 10) / 10.0);
        o.put("finished_at", Instant.now().toString());
        o.put("executed_by", where);
        o.put("train_command", "BitSkipTrain " + String.join(" ", trainArgs));
        AtomicFiles.write(d.resolve(RunFolder.DONE), Configs.JSON.writeValueAsBytes(o));
        log.printf(Locale.ROOT, "%s: done in %.0f s + eval %.0f s; best val ppl %.2f at step %d%n", tag, trainS, evalS,
                best == null ? Double.NaN : best[1], best == null ? -1 : (int) best[0]);
        return true;
    }

    private static int exec(List<String> command, Path logFile) throws IOException, InterruptedException {
        Files.writeString(logFile, "$ " + String.join(" ", command) + "\n", StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        Process p = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile())).start();
        try {
            return p.waitFor();
        } catch (InterruptedException e) {
            p.destroy();
            throw e;
        }
    }
}
