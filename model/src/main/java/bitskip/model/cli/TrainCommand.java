package bitskip.model.cli;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.engine.opencl.OpenCLBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.data.TrainingData;
import bitskip.model.io.RunLock;
import bitskip.model.nn.Losses;
import bitskip.model.cluster.Cluster;
import bitskip.model.train.DataParallelGradients;
import bitskip.model.train.GradientSource;
import bitskip.model.train.Shards;
import bitskip.model.train.RunDir;
import bitskip.model.train.TrainState;
import bitskip.model.train.Trainer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code bitskip train}: trains one BitSkip model (any preset, profile and variant) on WikiText-2 or text files. */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Train a BitSkip model on WikiText-2 (or --train/--valid text files).")
public final class TrainCommand implements Callable<Integer> {

    @Option(names = "--preset", defaultValue = "tiny",
            description = "Model size: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}). micro is the golden tests' "
                    + "size (d 32, 3 layers, ctx 8) with the GPT-2 vocabulary: for smoke runs, not for results.")
    Choices.Preset preset;

    @Option(names = "--profile", defaultValue = "paper",
            description = "${COMPLETION-CANDIDATES}: paper (the paper's equations) or reference (the authors' code). Default: ${DEFAULT-VALUE}.")
    Choices.Profile profile;

    @Option(names = "--variant", defaultValue = "bitskip",
            description = "${COMPLETION-CANDIDATES}: the ablation's four models (default: ${DEFAULT-VALUE}).")
    Choices.Variant variant;

    @Option(names = "--config", paramLabel = "FILE", description = "JSON file of configuration fields to override.")
    Path configFile;

    @Option(names = "--set", paramLabel = "FIELD=VALUE", description = "Override any configuration field: --set lambda_ee=0.5 (repeatable).")
    Map<String, String> sets = new LinkedHashMap<>();

    @Option(names = "--steps", description = "Optimizer steps to train (default: the preset's, 10000).")
    Integer steps;
    @Option(names = "--batch", description = "Sequences per micro-batch (default: paper 128, reference 16).")
    Integer batch;
    @Option(names = "--accum", description = "Micro-batches accumulated per optimizer step (default: paper 4, reference 1).")
    Integer accum;
    @Option(names = "--lr", description = "Peak learning rate (default: 6e-4).")
    Float lr;
    @Option(names = "--seed", description = "Seed of the initialization, data order, layer skipping and dropout (default: 7).")
    Long seed;
    @Option(names = "--eval-every", description = "Steps between validations, each followed by a checkpoint (default: 100).")
    Integer evalEvery;
    @Option(names = "--eval-batches", description = "Validation batches per evaluation (0 = the whole split).")
    Integer evalBatches;
    @Option(names = "--patience", description = "Validations without improvement before early stopping (default: paper 3, reference 5).")
    Integer patience;
    @Option(names = "--precision", description = "Number format of the matrix products: fp32 (default), or bf16 (bfloat16 "
            + "operands with float32 accumulation, results, master weights and optimizer state; the cpu backend on a CPU "
            + "with bf16 instructions, refused elsewhere).")
    String precision;

    @Option(names = "--data", paramLabel = "DIR", description = "Folder with wiki.{train,valid,test}.raw (else $BITSKIP_DATA, else the download cache).")
    Path data;
    @Option(names = "--train", paramLabel = "FILE", description = "A UTF-8 text file to train on (with --valid).")
    Path trainFile;
    @Option(names = "--valid", paramLabel = "FILE", description = "A UTF-8 text file to validate on (with --train).")
    Path validFile;

    @Option(names = "--out", paramLabel = "DIR", description = "Run folder (default: runs/PRESET-VARIANT-PROFILE). "
            + "One run owns it at a time (run.lock).")
    Path out;

    @Option(names = "--backend", completionCandidates = Choices.BackendNames.class,
            description = "Backend: ${COMPLETION-CANDIDATES} (cpu: OpenBLAS + Vector API; java: the scalar reference; "
                    + "opencl: a GPU or CPU device; tornado: TornadoVM-compiled Java kernels). Default: -Dbitskip.backend, "
                    + "$BITSKIP_BACKEND, else cpu.")
    String backend;

    @Option(names = "--device", description = "OpenCL device P:D (platform:device) or TornadoVM device B:D (with --backend tornado), see './bitskip devices', or a platform name (nvidia, pocl). Default: -Dbitskip.device, $BITSKIP_DEVICE, else the first GPU (TornadoVM: its default device).")
    String device;

    @Option(names = "--threads", description = "Threads of the cpu backend (default: -Dbitskip.threads, else all cores).")
    Integer threads;

    @Option(names = "--resume", description = "Continue the run in --out from its last checkpoint (refused if the "
            + "configuration differs from the run's, naming the fields).")
    boolean resume;

    @Option(names = "--force", description = "Start over in an --out that holds a run: deletes its checkpoints, "
            + "metrics and config.json first (without it, such a folder is refused).")
    boolean force;

    @Option(names = "--no-progress", description = "No progress bar (for logs).")
    boolean noProgress;

    @Option(names = "--data-parallel", paramLabel = "N", description = "Data-parallel training on N workers of the --spark "
            + "cluster: each step they compute the gradients of N disjoint shards of the batch, this process sums them "
            + "and applies AdamW.")
    Integer dataParallel;

    @Option(names = "--spark", arity = "0..1", fallbackValue = "local[*]", paramLabel = "MASTER",
            description = "The Spark master of --data-parallel's workers: local[*] (the default when no value is given), "
                    + "local[N], spark://HOST:PORT, k8s://... Needs the optional spark module (./bitskip adds it).")
    String spark;

    /** The configuration: preset × profile × variant, then the --config file, then flags and --set. */
    BitSkipConfig config() throws Exception {
        BitSkipConfig c = Presets.build(preset.toString(), profile.toString(), variant.toString());
        if (c.vocabSize() < Presets.GPT2_VOCAB) {
            // micro has the golden tests' 67-token vocabulary; text is GPT-2 BPE
            c = Configs.override(c, Map.of("vocab_size", Integer.toString(Presets.GPT2_VOCAB)), "--preset " + preset);
        }
        if (configFile != null) {
            c = Configs.overrideFromFile(c, configFile);
        }
        Map<String, String> o = new LinkedHashMap<>();
        put(o, "steps", steps);
        put(o, "batch", batch);
        put(o, "accum", accum);
        put(o, "lr", lr);
        put(o, "seed", seed);
        put(o, "eval_every", evalEvery);
        put(o, "eval_batches", evalBatches);
        put(o, "patience", patience);
        put(o, "precision", precision);
        o.putAll(sets);
        return Configs.override(c, o, "command line");
    }

    private static void put(Map<String, String> o, String key, Object v) {
        if (v != null) {
            o.put(key, v.toString());
        }
    }

    @Override
    public Integer call() throws Exception {
        BitSkipConfig c = config();
        Path dir = out != null ? out : Path.of("runs", c.preset() + "-" + c.variant() + "-" + c.profile());
        if (!resume) {
            requireNotInRunFiles(dir, "--config", configFile);
            requireNotInRunFiles(dir, "--train", trainFile);
            requireNotInRunFiles(dir, "--valid", validFile);
        }
        if (threads != null && threads <= 0) {
            throw new IllegalArgumentException("--threads must be positive, got " + threads);
        }
        if ((dataParallel == null) != (spark == null)) {
            throw new IllegalArgumentException(dataParallel == null ? "--spark on train needs --data-parallel N"
                    : "--data-parallel needs --spark [MASTER], the cluster its workers run on (local[*] on this machine)");
        }
        if (dataParallel != null) {
            Shards.check(c, dataParallel);
        }
        try (RunLock lock = RunLock.acquire(dir, "train")) {
            new RunDir(dir).checkStart(c, resume, force); // refused before the data and the backend load
            if (device != null && !device.isBlank()) {
                System.setProperty(bitskip.engine.opencl.OpenCLDevices.PROPERTY, device.trim());
            }
            if (threads != null) {
                System.setProperty("bitskip.threads", threads.toString());
            }
            try (Backend be = Backends.create(backend)) {
                be.usePrecision(bitskip.engine.Precision.parse(c.precision())); // refused before the data loads
                if (be instanceof OpenCLBackend ocl) { // a device allocates buffers up to its own limit
                    c.requireAddressable(c.batch(), ocl.device().maxAllocBytes() / Float.BYTES,
                            "floats of the largest buffer OpenCL device " + ocl.device().id() + " allocates");
                }
                TrainingData td = TrainingData.open(c, data, trainFile, validFile, System.err);
                try (GradientSource gradients = gradients(c, td, be.name())) {
                    System.err.printf(Locale.ROOT, "bitskip train: %s/%s/%s, backend %s (%s), out %s%n", c.preset(), c.profile(),
                            c.variant(), be.name(), be.description(), dir);
                    System.err.printf(Locale.ROOT, "data: %s%n", td.describe());
                    ProgressListener listener = new ProgressListener(noProgress);
                    Trainer trainer = new Trainer(c, be, td, dir, listener, gradients).ownedBy(lock);
                    trainer.prepare(resume, force, System.err);
                    System.err.printf(Locale.ROOT, "model: %,d parameters; batch %d x accum %d x ctx %d = %,d tokens/step%n",
                            trainer.model().params().count(), c.batch(), c.accum(), c.ctx(), (long) c.batch() * c.accum() * c.ctx());
                    TrainState s;
                    try {
                        s = trainer.run();
                    } finally {
                        listener.close();
                    }
                    System.err.printf(Locale.ROOT, "done at step %d; %s%n", s.step(), s.bestStep() < 0
                            ? "no validation ran, so no best model was written"
                            : String.format(Locale.ROOT, "best validation perplexity %.2f at step %d (exp of the token-weighted "
                                    + "mean cross-entropy); best model in %s", s.bestValPpl(), s.bestStep(),
                                    dir.resolve("checkpoint").resolve("model.safetensors")));
                    return 0;
                }
            }
        }
    }

    /** A fresh run rewrites its run files: an input that is one of them would be read and then destroyed. */
    private static void requireNotInRunFiles(Path dir, String option, Path input) {
        if (input == null) {
            return;
        }
        for (String f : RunDir.RUN_FILES) {
            Path runFile = dir.resolve(f);
            if (PathOptions.sameFile(input, runFile) || input.toAbsolutePath().normalize().startsWith(runFile.toAbsolutePath().normalize())) {
                throw new IllegalArgumentException(option + " " + input + " is " + f + " of the run folder " + dir
                        + ", which a fresh run rewrites: copy it elsewhere first (or continue that run with --resume)");
            }
        }
    }

    /** This process (null), or --data-parallel workers on the --spark cluster. */
    private GradientSource gradients(BitSkipConfig c, TrainingData td, String backendName) {
        if (dataParallel == null) {
            return null;
        }
        Cluster cluster = Cluster.load("spark");
        int perMachine = cluster.tasksPerMachine(spark);
        int workerThreads = threads != null ? threads
                : perMachine > 0 ? Math.max(1, Runtime.getRuntime().availableProcessors() / perMachine) : 0;
        System.err.printf(Locale.ROOT, "data-parallel: %d workers on %s, each with %s%n", dataParallel, spark,
                workerThreads > 0 ? workerThreads + " thread(s)" : "its machine's cores");
        return new DataParallelGradients(c, td, cluster.exchange(spark, dataParallel, c, backendName, workerThreads));
    }

    /** Draws the progress bar: step, loss, lr, tokens/s and ETA; one summary line per evaluation. */
    static final class ProgressListener implements Trainer.Listener {
        private final boolean plain;
        private ProgressBar bar;

        ProgressListener(boolean plain) {
            this.plain = plain;
        }

        @Override
        public void started(int firstStep, int steps) {
            if (!plain) {
                bar = new ProgressBarBuilder().setTaskName("train").setInitialMax(steps).setStyle(ProgressBarStyle.ASCII)
                        .setUpdateIntervalMillis(500).setMaxRenderedLength(160).showSpeed(new java.text.DecimalFormat("0.00", java.text.DecimalFormatSymbols.getInstance(Locale.ROOT))).setUnit(" steps", 1).startsFrom(firstStep, java.time.Duration.ZERO)
                        .setConsumer(new me.tongfei.progressbar.ConsoleProgressBarConsumer(System.err)).build();
            }
        }

        @Override
        public void step(int step, Losses l, float lr, double tps) {
            String msg = String.format(Locale.ROOT, "loss %.4f lr %.2e %.0f tok/s", l.total(), lr, tps);
            if (bar != null) {
                bar.stepTo(step);
                bar.setExtraMessage(" " + msg); // the bar puts it right after the speed
            } else if (step % 10 == 0 || step == 1) {
                System.err.printf(Locale.ROOT, "step %d %s%n", step, msg);
            }
        }

        @Override
        public void evaluated(int step, double valLoss, double valPpl, double[] exits, boolean best) {
            StringBuilder e = new StringBuilder();
            for (double x : exits) {
                e.append(e.length() == 0 ? "" : " ").append(String.format(Locale.ROOT, "%.2f", x));
            }
            String line = String.format(Locale.ROOT, "eval step %d: val loss %.4f, val ppl %.2f (token-weighted)%s; exit losses [%s]",
                    step, valLoss, valPpl, best ? " *best*" : "", e);
            if (bar != null) {
                System.err.print("\r");
                System.err.println(line + "                    ");
            } else {
                System.err.println(line);
            }
        }

        @Override
        public void stopped(String why) {
            System.err.println(why);
        }

        void close() {
            if (bar != null) {
                bar.close();
            }
        }
    }
}
