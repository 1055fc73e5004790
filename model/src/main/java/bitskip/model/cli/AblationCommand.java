package bitskip.model.cli;

import bitskip.model.ablation.AblationPlan;
import bitskip.model.ablation.AblationReport;
import bitskip.model.ablation.AblationRunner;
import bitskip.model.ablation.RunExecutor;
import bitskip.model.ablation.RunSpec;
import bitskip.model.cluster.Cluster;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.io.IoErrors;
import bitskip.model.io.RunLock;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bitskip ablation}: the 2×2 factorial of Table 2 and the sweeps of Tables 6–8 for any preset, profile(s),
 * step budget and seed; each run is the train command in its own JVM, then the eval command on its best
 * checkpoint; finished runs are skipped on restart; then {@code OUT/report.md} with the paper's tables and figures.
 */
@Command(name = "ablation", mixinStandardHelpOptions = true,
        description = "Run the factorial ablation (baseline, h-only, ee-only, bitskip), the sweeps of Tables 6-8 and/or the "
                + "exit-head study, then write OUT/report.md with Tables 2-8 beside the paper's, the exit-head table and PNG figures.")
public final class AblationCommand implements Callable<Integer> {

    @Option(names = "--preset", defaultValue = "tiny", description = "Model size: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).")
    Choices.Preset preset;

    @Option(names = "--profile", defaultValue = "paper", split = ",",
            description = "${COMPLETION-CANDIDATES}, or both: --profile paper,reference (default: ${DEFAULT-VALUE}).")
    List<Choices.Profile> profileChoices;

    @Option(names = "--steps", required = true, description = "Step budget of each factorial run.")
    int steps;

    @Option(names = "--seed", defaultValue = "7", description = "Seed of the factorial runs (paper: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--runs", defaultValue = "factorial", split = ",", description = "${COMPLETION-CANDIDATES}, comma-separated: "
            + "the factorial of Table 2, the sweeps of Tables 6-8, the exit-head study (bitskip with each exit-head design: "
            + "adapter, lowrank, the shared head with its early-exit gradient stopped; beside the factorial's bitskip and h-only, "
            + "which it runs too), or all three (default: ${DEFAULT-VALUE}).")
    List<Choices.Runs> what;

    @Option(names = "--exit-rank", defaultValue = "" + AblationPlan.DEFAULT_EXIT_RANK,
            description = "Rank r of the exit-head study's lowrank run (default: ${DEFAULT-VALUE}).")
    int exitRank;

    @Option(names = "--sweep-steps", defaultValue = "500", description = "Step budget of each sweep run (paper: ${DEFAULT-VALUE}).")
    int sweepSteps;

    @Option(names = "--sweep-seed", defaultValue = "42", description = "Seed of the sweep runs (paper: ${DEFAULT-VALUE}).")
    long sweepSeed;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output folder: runs/ID/ per run, "
            + "report.md, figures. One ablation owns it at a time (run.lock).")
    Path out;

    @Option(names = "--dry-run", description = "List the runs, their status and settings, and exit.")
    boolean dryRun;

    @Option(names = "--parallel", defaultValue = "1", description = "Runs at once, each in its own process (default: ${DEFAULT-VALUE}).")
    int parallel;

    @Option(names = "--spark", arity = "0..1", fallbackValue = "local[*]", paramLabel = "MASTER",
            description = "Run each run as a task of this Spark master instead of --parallel processes: local[*] (the default "
                    + "when no value is given), local[N], spark://HOST:PORT, k8s://... Each task still trains in its own JVM; "
                    + "--out must be a folder every executor sees. Needs the optional spark module (./bitskip adds it).")
    String spark;

    @Option(names = "--report-only", description = "Only (re)write report.md and the figures from the runs so far.")
    boolean reportOnly;

    @Option(names = "--threads", description = "Threads of each run's backend (default: -Dbitskip.threads if set, "
            + "else the cores divided by --parallel, at least 1).")
    Integer threads;

    // passed to every train command
    @Option(names = "--batch", description = "Sequences per micro-batch of every run (default: the profile's).")
    Integer batch;
    @Option(names = "--accum", description = "Micro-batches per optimizer step of every run (default: the profile's).")
    Integer accum;
    @Option(names = "--eval-every", description = "Steps between validations of every run (default: 100).")
    Integer evalEvery;
    @Option(names = "--eval-batches", description = "Validation batches per evaluation, also used by the final eval (0 = all).")
    Integer evalBatches;
    @Option(names = "--patience", description = "Validations without improvement before a run stops early (default: the profile's).")
    Integer patience;
    @Option(names = "--set", paramLabel = "FIELD=VALUE", description = "Override a configuration field in every run (repeatable).")
    Map<String, String> sets = new LinkedHashMap<>();
    @Option(names = "--data", description = "Folder with wiki.{train,valid,test}.raw.")
    Path data;
    @Option(names = "--train", description = "A UTF-8 text file to train on (with --valid).")
    Path trainFile;
    @Option(names = "--valid", description = "A UTF-8 text file to validate and evaluate on (with --train).")
    Path validFile;
    @Option(names = "--backend", completionCandidates = Choices.BackendNames.class,
            description = "Backend of every run: ${COMPLETION-CANDIDATES} (default: -Dbitskip.backend, $BITSKIP_BACKEND, else cpu).")
    String backend;

    /** The JVM that runs the children; null: a JVM like this one ({@link AblationRunner.Java#current}). */
    private AblationRunner.Java java = null;

    /** Runs the children with this JVM, options and class path instead of this JVM's (tests, launchers). */
    public AblationCommand withJava(AblationRunner.Java java) {
        this.java = java;
        return this;
    }

    @Override
    public Integer call() throws Exception {
        if (parallel < 1) {
            throw new IllegalArgumentException("--parallel must be >= 1, got " + parallel);
        }
        if ((trainFile == null) != (validFile == null)) {
            throw new IllegalArgumentException("--train and --valid go together");
        }
        if (data != null && trainFile != null) {
            throw new IllegalArgumentException("give --data DIR or --train/--valid files, not both");
        }
        if (spark != null) {
            // The children run in the executors' working folders, on any machine: every path absolute.
            out = out.toAbsolutePath();
            data = data == null ? null : data.toAbsolutePath();
            trainFile = trainFile == null ? null : trainFile.toAbsolutePath();
            validFile = validFile == null ? null : validFile.toAbsolutePath();
        }
        List<String> profiles = profileChoices.stream().map(Object::toString).toList();
        AblationPlan plan = AblationPlan.build(profiles,
                String.join(",", what.stream().map(Object::toString).toList()), steps, seed, sweepSteps, sweepSeed, exitRank);
        List<String> shared = new ArrayList<>();
        add(shared, "--batch", batch);
        add(shared, "--accum", accum);
        add(shared, "--eval-every", evalEvery);
        add(shared, "--eval-batches", evalBatches);
        add(shared, "--patience", patience);
        for (Map.Entry<String, String> e : sets.entrySet()) {
            shared.add("--set");
            shared.add(e.getKey() + "=" + e.getValue());
        }
        List<String> evalData = new ArrayList<>();
        if (data != null) {
            shared.addAll(List.of("--data", data.toString()));
            evalData.addAll(List.of("--data", data.toString()));
        }
        if (trainFile != null) {
            shared.addAll(List.of("--train", trainFile.toString(), "--valid", validFile.toString()));
            evalData.addAll(List.of("--text", validFile.toString()));
        }
        List<String> be = backend == null ? List.of() : List.of("--backend", backend);
        AblationRunner.Java child = java != null ? java : AblationRunner.Java.current();
        if (spark != null && parallel != 1) {
            throw new IllegalArgumentException("--parallel runs processes here; with --spark the master decides how many runs go at once");
        }
        Cluster cluster = spark != null && !dryRun && !reportOnly ? Cluster.load("spark") : null;
        int atOnce = cluster != null ? cluster.tasksPerMachine(spark) : parallel;
        int t = threadsPerRun(threads, System.getProperty("bitskip.threads"), atOnce, Runtime.getRuntime().availableProcessors());
        if (t > 0) {
            child = child.withJvmArg("-Dbitskip.threads=" + t);
        }
        RunExecutor executor = cluster != null ? cluster.runs(spark) : RunExecutor.processes(parallel);
        AblationRunner runner = new AblationRunner(new AblationRunner.Settings(out, preset.toString(), shared, evalData, be, executor,
                child, AblationCommand::trainConfig), System.err);
        List<RunSpec> runs = plan.runs();
        if (dryRun) {
            System.err.println(runs.size() + " runs in " + out.resolve("runs") + ":");
            runner.dryRun(runs);
            return 0;
        }
        List<String> failed;
        Path report;
        try (RunLock lock = RunLock.acquire(out, "ablation")) {
            failed = reportOnly ? List.of() : runner.run(runs);
            Map<String, Path> dirs = new LinkedHashMap<>();
            for (RunSpec r : runs) {
                dirs.put(r.id(), runner.dirOf(r));
            }
            lock.verify();
            report = new AblationReport(out, plan, profiles, dirs).write(header(runs.size(), profiles, failed));
        }
        System.err.println("report: " + report);
        if (!failed.isEmpty()) {
            System.err.println("failed runs (see their train.log / eval.log): " + String.join(", ", failed));
            return 1;
        }
        return 0;
    }

    private String header(int n, List<String> profiles, List<String> failed) {
        StringBuilder s = new StringBuilder("# BitSkip ablation report\n\n");
        s.append("Command:\n\n```\n./bitskip ablation ").append(String.join(" ", commandLine())).append("\n```\n\n");
        s.append("Preset `").append(preset).append("`, profile(s) ").append(String.join(", ", profiles)).append(", ").append(n)
                .append(" runs (`runs/ID/`: config.json, metrics.jsonl, checkpoint/, train.log, eval.json, eval.csv, done.json).");
        if (!failed.isEmpty()) {
            s.append(" Failed: ").append(String.join(", ", failed)).append('.');
        }
        s.append("\n\nThe paper's numbers are its 85M model (Table 1) trained up to 10k steps with batch 128 x 4; compare trends, "
                + "not values, when the preset or budget differs.\n");
        return s.toString();
    }

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /**
     * The arguments this command was given (after the subcommand name), for the report's header: the command
     * that reproduces the runs, so without --report-only (which only redraws a report), and without --parallel
     * and --spark, which decide where and how many at once the runs went, not what they computed (so the
     * report is the same whichever way they were executed); --data DIR becomes --data "$BITSKIP_DATA" (the
     * same data on the reader's machine, wherever it lies there).
     */
    private List<String> commandLine() {
        return reproducingArgs(spec.commandLine().getParseResult().originalArgs());
    }

    static List<String> reproducingArgs(List<String> given) {
        List<String> a = new ArrayList<>();
        for (int i = !given.isEmpty() && given.get(0).equals("ablation") ? 1 : 0; i < given.size(); i++) {
            String x = given.get(i);
            if (x.equals("--report-only") || x.startsWith("--parallel=") || x.startsWith("--spark=")) {
                continue;
            }
            if (x.equals("--parallel") || (x.equals("--spark") && i + 1 < given.size() && !given.get(i + 1).startsWith("-"))) {
                i++; // and its value
                continue;
            }
            if (x.equals("--data") && i + 1 < given.size() || x.startsWith("--data=")) {
                // the data folder is the reader's own: the report's command names it by the variable the CLI reads
                a.add("--data");
                a.add("\"$BITSKIP_DATA\"");
                i += x.equals("--data") ? 1 : 0;
                continue;
            }
            if (!x.equals("--spark")) {
                a.add(x);
            }
        }
        return a;
    }

    /**
     * The threads each run's process gets, or 0 to leave its default (all cores): --threads when given; else
     * none when -Dbitskip.threads is set (the children inherit it); else cores / parallel. Several processes
     * with a thread per core each would share the cores at a loss: OpenBLAS and our own workers then spin
     * and wait on each other (a 2-thread training beside another ran 3x slower than with 1 thread each).
     */
    static int threadsPerRun(Integer threads, String property, int parallel, int cores) {
        if (threads != null) {
            if (threads < 1) {
                throw new IllegalArgumentException("--threads must be >= 1, got " + threads);
            }
            return threads;
        }
        if (property != null || parallel <= 1) {
            return 0;
        }
        return Math.max(1, cores / parallel);
    }

    private static void add(List<String> a, String flag, Object v) {
        if (v != null) {
            a.add(flag);
            a.add(v.toString());
        }
    }

    /** The configuration `bitskip train` builds from these arguments: the same parsing and the same code. */
    static BitSkipConfig trainConfig(List<String> args) {
        TrainCommand t = new TrainCommand();
        new CommandLine(t).parseArgs(args.toArray(new String[0]));
        try {
            return t.config();
        } catch (IllegalArgumentException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalArgumentException(IoErrors.describe(e), e);
        }
    }

}
