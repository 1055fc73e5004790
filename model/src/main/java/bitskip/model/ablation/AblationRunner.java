package bitskip.model.ablation;

import bitskip.model.cli.ExitCodes;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.io.AtomicFiles;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/**
 * Runs the planned trainings, each in its own JVM running the very train command of {@code bitskip train}
 * ({@code BitSkipTrain}), then evaluates its best checkpoint with {@code BitSkipEval} (eval.json, eval.csv),
 * up to {@code parallel} runs at once. A finished run has {@code done.json} in its folder and is skipped on
 * restart; an unfinished one whose folder holds a checkpoint is continued with {@code --resume}.
 */
public final class AblationRunner {

    /** How to start a JVM like this one: the java binary, its JVM options and the class path. */
    public record Java(String binary, List<String> jvmArgs, String classPath) {
        public static Java current() {
            String bin = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            List<String> args = new ArrayList<>();
            for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
                if (!a.startsWith("-agentlib:jdwp") && !a.startsWith("-javaagent") && !a.startsWith("-Xrunjdwp")) {
                    args.add(a);
                }
            }
            return new Java(bin, args, System.getProperty("java.class.path"));
        }

        /** The same JVM with one more option, replacing an option that sets the same -D property. */
        public Java withJvmArg(String arg) {
            List<String> a = new ArrayList<>();
            String key = arg.contains("=") ? arg.substring(0, arg.indexOf('=') + 1) : arg;
            for (String x : jvmArgs) {
                if (!x.startsWith(key)) {
                    a.add(x);
                }
            }
            a.add(arg);
            return new Java(binary, a, classPath);
        }

        List<String> command(String mainClass, List<String> args) {
            List<String> c = new ArrayList<>();
            c.add(binary);
            c.addAll(jvmArgs);
            c.add("-cp");
            c.add(classPath);
            c.add(mainClass);
            c.addAll(args);
            return c;
        }
    }

    /**
     * @param sharedTrainArgs arguments every train command gets (--batch, --set, --data/--train/--valid, --backend ...)
     * @param evalDataArgs    what eval reads: --data DIR, or --text VALIDFILE
     * @param configOf        the configuration the train command builds from an argument list (dry run, eval batches)
     */
    public record Settings(Path out, String preset, List<String> sharedTrainArgs, List<String> evalDataArgs,
                           List<String> backendArgs, int parallel, Java java, Function<List<String>, BitSkipConfig> configOf) {}

    private final Settings s;
    private final PrintStream log;

    public AblationRunner(Settings s, PrintStream log) {
        this.s = s;
        this.log = log;
    }

    public Path dirOf(RunSpec r) {
        return s.out().resolve("runs").resolve(r.id());
    }

    public List<String> trainArgs(RunSpec r) {
        List<String> a = new ArrayList<>(r.trainArgs(s.preset()));
        a.addAll(s.sharedTrainArgs());
        a.addAll(s.backendArgs());
        a.addAll(List.of("--out", dirOf(r).toString(), "--no-progress"));
        return a;
    }

    public List<String> evalArgs(RunSpec r, BitSkipConfig c) {
        Path d = dirOf(r);
        List<String> a = new ArrayList<>(List.of("--checkpoint", d.toString(), "--json", d.resolve(RunFolder.EVAL).toString(),
                "--csv", d.resolve("eval.csv").toString(), "--batches", Integer.toString(c.evalBatches())));
        a.addAll(s.evalDataArgs());
        a.addAll(s.backendArgs());
        return a;
    }

    /** Lists every run, its status and settings, and the command it runs. */
    public void dryRun(List<RunSpec> runs) {
        for (RunSpec r : runs) {
            BitSkipConfig c = s.configOf().apply(trainArgs(r));
            Path d = dirOf(r);
            String status = RunFolder.isDone(d) ? "done (skipped)" : holdsRun(d) ? "partial (resumes)" : "new";
            log.printf(Locale.ROOT, "%-36s %-18s %s/%s hadamard=%s lambda_ee=%s p_max=%s lambda_r=%s lambda_q=%s steps=%d seed=%d "
                            + "batch=%dx%d ctx=%d eval_every=%d eval_batches=%d%n",
                    r.id(), status, c.profile(), c.variant(), c.hadamard(), c.lambdaEe(), c.pMax(), c.lambdaR(), c.lambdaQ(),
                    c.steps(), c.seed(), c.batch(), c.accum(), c.ctx(), c.evalEvery(), c.evalBatches());
            log.println("    train: BitSkipTrain " + String.join(" ", trainArgs(r)));
            log.println("    eval:  BitSkipEval " + String.join(" ", evalArgs(r, c)));
        }
    }

    /** Runs every unfinished run; returns the ids of the runs that failed. */
    public List<String> run(List<RunSpec> runs) throws Exception {
        // Refuse a bad configuration before any work starts.
        List<BitSkipConfig> configs = new ArrayList<>();
        for (RunSpec r : runs) {
            configs.add(s.configOf().apply(trainArgs(r)));
        }
        List<String> failed = java.util.Collections.synchronizedList(new ArrayList<>());
        AtomicInteger n = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, s.parallel()));
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (int i = 0; i < runs.size(); i++) {
                RunSpec r = runs.get(i);
                BitSkipConfig c = configs.get(i);
                fs.add(pool.submit(() -> {
                    int k = n.incrementAndGet();
                    try {
                        if (!runOne(r, c, k, runs.size())) {
                            failed.add(r.id());
                        }
                    } catch (Exception e) {
                        log.println("[" + k + "/" + runs.size() + "] " + r.id() + ": " + e);
                        failed.add(r.id());
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
    }

    private boolean runOne(RunSpec r, BitSkipConfig c, int k, int total) throws Exception {
        Path d = dirOf(r);
        String tag = "[" + k + "/" + total + "] " + r.id();
        if (RunFolder.isDone(d)) {
            log.println(tag + ": done already, skipped");
            return true;
        }
        Files.createDirectories(d);
        List<String> args = trainArgs(r);
        // a folder that holds a run (killed before or after its first checkpoint) is continued, never replaced
        boolean resume = holdsRun(d);
        if (resume) {
            args.add("--resume");
        }
        log.println(tag + ": " + (resume ? "resuming" : "training") + " (log " + d.resolve("train.log") + ")");
        long t0 = System.nanoTime();
        int rc = exec(s.java().command("BitSkipTrain", args), d.resolve("train.log"));
        double trainS = (System.nanoTime() - t0) / 1e9;
        if (rc != 0) {
            log.println(tag + ": training failed with exit code " + rc + (rc == ExitCodes.FOLDER_IN_USE ? " (its folder is in use by another run)"
                    : rc == ExitCodes.NON_FINITE ? " (a NaN or an infinity stopped it)" : rc == ExitCodes.BAD_INPUT ? " (bad input)" : "") + "; see " + d.resolve("train.log"));
            return false;
        }
        t0 = System.nanoTime();
        rc = exec(s.java().command("BitSkipEval", evalArgs(r, c)), d.resolve("eval.log"));
        double evalS = (System.nanoTime() - t0) / 1e9;
        if (rc != 0) {
            log.println(tag + ": evaluation failed with exit code " + rc + "; see " + d.resolve("eval.log"));
            return false;
        }
        RunFolder f = RunFolder.read(d);
        double[] best = f.best(), last = f.last();
        ObjectNode o = Configs.JSON.createObjectNode();
        o.put("id", r.id());
        o.put("group", r.group());
        o.put("profile", r.profile());
        o.put("variant", r.variant());
        o.put("best_val_ppl", best == null ? Double.NaN : best[1]);
        o.put("best_step", best == null ? -1 : (int) best[0]);
        o.put("final_val_ppl", last == null ? Double.NaN : last[1]);
        o.put("last_step", f.lastStep());
        o.put("stopped_early", f.lastStep() < c.steps());
        o.put("train_seconds", Math.round(trainS * 10) / 10.0);
        o.put("eval_seconds", Math.round(evalS * 10) / 10.0);
        o.put("finished_at", Instant.now().toString());
        o.put("train_command", "BitSkipTrain " + String.join(" ", trainArgs(r)));
        AtomicFiles.write(d.resolve(RunFolder.DONE), Configs.JSON.writeValueAsBytes(o));
        log.printf(Locale.ROOT, "%s: done in %.0f s + eval %.0f s; best val ppl %.2f at step %d%n", tag, trainS, evalS,
                best == null ? Double.NaN : best[1], best == null ? -1 : (int) best[0]);
        return true;
    }

    /** Whether a run folder holds (part of) a training run: its config.json or a checkpoint. */
    private static boolean holdsRun(Path d) {
        return Files.exists(d.resolve("config.json")) || Files.isDirectory(d.resolve("last"))
                || Files.isDirectory(d.resolve("last.prev"));
    }

    private static int exec(List<String> command, Path logFile) throws IOException, InterruptedException {
        Files.writeString(logFile, "$ " + String.join(" ", command) + "\n", StandardCharsets.UTF_8,
                java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
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
