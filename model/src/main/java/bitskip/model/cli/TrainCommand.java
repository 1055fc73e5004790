package bitskip.model.cli;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.data.TrainingData;
import bitskip.model.nn.Losses;
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

    @Option(names = "--preset", description = "Model size: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE}).",
            defaultValue = "tiny", completionCandidates = PresetNames.class)
    String preset;

    @Option(names = "--profile", description = "paper (the paper's equations) or reference (the authors' code). Default: ${DEFAULT-VALUE}.",
            defaultValue = "paper")
    String profile;

    @Option(names = "--variant", description = "baseline, h-only, ee-only or bitskip (default: ${DEFAULT-VALUE}).",
            defaultValue = "bitskip")
    String variant;

    @Option(names = "--config", description = "JSON file of configuration fields to override.")
    Path configFile;

    @Option(names = "--set", description = "Override any configuration field: --set lambda_ee=0.5 (repeatable).")
    Map<String, String> sets = new LinkedHashMap<>();

    @Option(names = "--steps") Integer steps;
    @Option(names = "--batch") Integer batch;
    @Option(names = "--accum") Integer accum;
    @Option(names = "--lr") Float lr;
    @Option(names = "--seed") Long seed;
    @Option(names = "--eval-every") Integer evalEvery;
    @Option(names = "--eval-batches", description = "Validation batches per evaluation (0 = the whole split).")
    Integer evalBatches;
    @Option(names = "--patience") Integer patience;

    @Option(names = "--data", description = "Folder with wiki.{train,valid,test}.raw (else $BITSKIP_DATA, else the download cache).")
    Path data;
    @Option(names = "--train", description = "A UTF-8 text file to train on (with --valid).")
    Path trainFile;
    @Option(names = "--valid", description = "A UTF-8 text file to validate on (with --train).")
    Path validFile;

    @Option(names = "--out", description = "Run folder (default: runs/PRESET-VARIANT-PROFILE).")
    Path out;

    @Option(names = "--backend", description = "cpu (OpenBLAS + Vector API), java (scalar reference), opencl or tornado (TornadoVM). Default: -Dbitskip.backend, $BITSKIP_BACKEND, else cpu.")
    String backend;

    @Option(names = "--device", description = "OpenCL device P:D (platform:device) or TornadoVM device B:D (with --backend tornado), see './bitskip devices', or a platform name (nvidia, pocl). Default: -Dbitskip.device, $BITSKIP_DEVICE, else the first GPU (TornadoVM: its default device).")
    String device;

    @Option(names = "--threads", description = "Threads of the cpu backend (default: -Dbitskip.threads, else all cores).")
    Integer threads;

    @Option(names = "--resume", description = "Continue the run in --out from its last checkpoint.")
    boolean resume;

    @Option(names = "--no-progress", description = "No progress bar (for logs).")
    boolean noProgress;

    static final class PresetNames extends java.util.ArrayList<String> {
        PresetNames() {
            super(Presets.PRESETS);
        }
    }

    /** The configuration: preset × profile × variant, then the --config file, then flags and --set. */
    BitSkipConfig config() throws Exception {
        BitSkipConfig c = Presets.build(preset, profile, variant);
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
        TrainingData td = TrainingData.open(c, data, trainFile, validFile, System.err);
        if (device != null && !device.isBlank()) {
            System.setProperty(bitskip.engine.opencl.OpenCLDevices.PROPERTY, device.trim());
        }
        if (threads != null) {
            if (threads <= 0) {
                throw new IllegalArgumentException("--threads must be positive, got " + threads);
            }
            System.setProperty("bitskip.threads", threads.toString());
        }
        try (Backend be = Backends.create(backend)) {
            System.err.printf(Locale.ROOT, "bitskip train: %s/%s/%s, backend %s (%s), out %s%n", c.preset(), c.profile(),
                    c.variant(), be.name(), be.description(), dir);
            System.err.printf(Locale.ROOT, "data: %s%n", td.describe());
            ProgressListener listener = new ProgressListener(noProgress);
            Trainer trainer = new Trainer(c, be, td, dir, listener);
            trainer.prepare(resume, System.err);
            System.err.printf(Locale.ROOT, "model: %,d parameters; batch %d x accum %d x ctx %d = %,d tokens/step%n",
                    trainer.model().params().count(), c.batch(), c.accum(), c.ctx(), (long) c.batch() * c.accum() * c.ctx());
            TrainState s = trainer.run();
            listener.close();
            System.err.printf(Locale.ROOT, "done at step %d; best validation perplexity %.2f at step %d "
                    + "(exp of the token-weighted mean cross-entropy); best model in %s%n",
                    s.step(), s.bestValPpl(), s.bestStep(), dir.resolve("checkpoint").resolve("model.safetensors"));
            return 0;
        }
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
                        .setUpdateIntervalMillis(500).setMaxRenderedLength(160).showSpeed().setUnit(" steps", 1).startsFrom(firstStep, java.time.Duration.ZERO)
                        .setConsumer(new me.tongfei.progressbar.ConsoleProgressBarConsumer(System.err)).build();
            }
        }

        @Override
        public void step(int step, Losses l, float lr, double tps) {
            String msg = String.format(Locale.ROOT, "loss %.4f lr %.2e %.0f tok/s", l.total(), lr, tps);
            if (bar != null) {
                bar.stepTo(step);
                bar.setExtraMessage(msg);
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
