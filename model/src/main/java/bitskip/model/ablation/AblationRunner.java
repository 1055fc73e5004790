package bitskip.model.ablation;

import bitskip.model.config.BitSkipConfig;
import java.io.PrintStream;
import java.io.Serializable;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Runs the planned trainings, each in its own JVM running the very train command of {@code bitskip train}
 * ({@code BitSkipTrain}), then evaluates its best checkpoint with {@code BitSkipEval} (eval.json, eval.csv),
 * as {@link RunTask}s handed to a {@link RunExecutor} (child processes of this JVM, up to --parallel at once,
 * or a cluster's tasks). A finished run has {@code done.json} in its folder and is skipped on restart; an
 * unfinished one whose folder holds a checkpoint is continued with {@code --resume}.
 */
public final class AblationRunner {

    /** How to start a JVM like this one: the java binary, its JVM options and the class path. */
    public record Java(String binary, List<String> jvmArgs, String classPath) implements Serializable {
        public Java {
            jvmArgs = List.copyOf(jvmArgs);
        }

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

        public List<String> command(String mainClass, List<String> args) {
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
                           List<String> backendArgs, RunExecutor executor, Java java, Function<List<String>, BitSkipConfig> configOf) {}

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
            String status = RunFolder.isDone(d) ? "done (skipped)" : RunFolder.holdsRun(d) ? "partial (resumes)" : "new";
            log.printf(Locale.ROOT, "%-36s %-18s %s/%s hadamard=%s lambda_ee=%s p_max=%s lambda_r=%s lambda_q=%s steps=%d seed=%d "
                            + "batch=%dx%d ctx=%d eval_every=%d eval_batches=%d%n",
                    r.id(), status, c.profile(), c.variant(), c.hadamard(), c.lambdaEe(), c.pMax(), c.lambdaR(), c.lambdaQ(),
                    c.steps(), c.seed(), c.batch(), c.accum(), c.ctx(), c.evalEvery(), c.evalBatches());
            log.println("    train: BitSkipTrain " + String.join(" ", trainArgs(r)));
            log.println("    eval:  BitSkipEval " + String.join(" ", evalArgs(r, c)));
        }
    }

    /** The work of run r, as any process that sees its folder can carry it out. */
    public RunTask task(RunSpec r, BitSkipConfig c) {
        return new RunTask(r.id(), r.group(), r.profile(), r.variant(), c.steps(), dirOf(r).toString(), trainArgs(r), evalArgs(r, c));
    }

    /** Runs every unfinished run; returns the ids of the runs that failed. */
    public List<String> run(List<RunSpec> runs) throws Exception {
        // Refuse a bad configuration before any work starts.
        List<RunTask> tasks = new ArrayList<>();
        for (RunSpec r : runs) {
            tasks.add(task(r, s.configOf().apply(trainArgs(r))));
        }
        return s.executor().run(tasks, s.java(), log);
    }
}
