package bitskip.model.train;

import bitskip.engine.Backend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.io.AtomicFiles;
import bitskip.model.io.RunLock;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Losses;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * The training loop: AdamW with gradient accumulation, global gradient-norm clipping and the config's
 * schedule; validation every eval_every steps, early stopping with patience, the best model kept in
 * {@code OUT/checkpoint/model.safetensors}, and a resumable checkpoint in {@code OUT/last/} after every
 * validation. {@code OUT/metrics.jsonl} gets one JSON line per step and per validation. A step's gradients
 * come from a {@link GradientSource}: this process by default, or data-parallel workers.
 *
 * <p>Resuming loads {@code OUT/last/} and continues as the uninterrupted run would have (the data, the
 * layer-skip and the dropout masks are functions of seed and step); metrics lines written after that
 * checkpoint by the killed run are dropped. A resume is refused, naming the fields, when the requested
 * configuration or {@code OUT/config.json} differs from the checkpoint's. A fresh run into a folder that
 * already holds a run is refused unless forced, which first deletes that run's files (and only those).
 *
 * <p>Every step checks the training loss (every micro-batch) and the gradient norm before the optimizer
 * touches the weights, and every validation its loss: a NaN or an infinity stops the run with a
 * {@link NonFiniteException} naming the step and the first tensor that went bad, so the newest checkpoint is
 * the last good one (and {@link Checkpoints} never writes a non-finite value anyway).
 */
public final class Trainer {
    /** Receives progress; the command line draws a progress bar from it. */
    public interface Listener {
        default void started(int firstStep, int steps) {}

        /** After the backward pass of a step (1-based), before the gradient norm is checked and the optimizer runs. */
        default void gradients(int step, BitSkipModel model) {}

        default void step(int step, Losses losses, float lr, double tokensPerSecond) {}

        default void evaluated(int step, double valLoss, double valPpl, double[] exitLosses, boolean best) {}

        default void stopped(String why) {}
    }

    /** What one validation measures. valLoss is the token-weighted mean cross-entropy. */
    public record Evaluation(double valLoss, double valPpl, double[] exitLosses, long tokens) {}

    private final BitSkipConfig c;
    private final Backend be;
    private final BatchSource data;
    private final Path out;
    private final RunDir folder;
    private final Listener listener;
    private final BitSkipModel model;
    private final Schedule schedule;
    private final GradientSource gradients;
    private TrainState state = TrainState.fresh();
    private RunLock lock;
    /** The step of the newest checkpoint in last/, or -1. */
    private int savedStep = -1;

    public Trainer(BitSkipConfig c, Backend be, BatchSource data, Path out, Listener listener) {
        this(c, be, data, out, listener, null);
    }

    /**
     * A trainer whose steps take their gradients from gradients (null: {@link LocalGradients}, this process);
     * validation, the optimizer and the checkpoints stay here. The caller closes gradients.
     */
    public Trainer(BitSkipConfig c, Backend be, BatchSource data, Path out, Listener listener, GradientSource gradients) {
        this.c = c;
        this.be = be;
        be.usePrecision(bitskip.engine.Precision.parse(c.precision())); // refused here, before any work, where it cannot run
        this.data = data;
        this.out = out;
        this.folder = new RunDir(out);
        this.listener = listener == null ? new Listener() {} : listener;
        this.model = new BitSkipModel(c, be, c.batch());
        this.schedule = new Schedule(c);
        this.gradients = gradients != null ? gradients : new LocalGradients(c, data);
    }

    public BitSkipModel model() {
        return model;
    }

    public TrainState state() {
        return state;
    }

    /** Checks that this process still owns the run folder before each checkpoint it writes. */
    public Trainer ownedBy(RunLock lock) {
        this.lock = lock;
        return this;
    }

    /** {@link #prepare(boolean, boolean, PrintStream)} without force. */
    public void prepare(boolean resume, PrintStream log) throws IOException {
        prepare(resume, false, log);
    }

    /**
     * Starts fresh (initializing from the seed) or, with resume, from {@code OUT/last/}. A resume with no
     * checkpoint there starts fresh and says so on the given stream. What may start where is
     * {@link RunDir#checkStart}'s: a fresh start into a folder that holds a run is refused unless force, which
     * deletes that run's files first.
     */
    public void prepare(boolean resume, boolean force, PrintStream log) throws IOException {
        Path last = folder.checkStart(c, resume, force);
        Files.createDirectories(out);
        folder.deleteLeftovers();
        if (last != null) {
            Checkpoints.loadModel(model, last.resolve("model.safetensors"));
            Checkpoints.loadOptimizer(model, last.resolve("optimizer.safetensors"));
            state = Configs.JSON.readValue(Files.readString(last.resolve("state.json")), TrainState.class);
            savedStep = state.step();
            truncateMetrics(state.step());
            log.println("resuming " + out + " at step " + state.step() + " from " + last);
            return;
        }
        if (resume) {
            log.println("no checkpoint in " + out.resolve("last") + "; starting a fresh run");
        } else if (force && !folder.runFiles().isEmpty()) {
            log.println("--force: deleting the previous run in " + out + " (" + String.join(", ", folder.runFiles()) + ")");
            folder.deleteRun();
        }
        model.initialize(c.seed());
        state = TrainState.fresh();
        AtomicFiles.write(out.resolve("config.json"), Configs.toJson(c).getBytes(StandardCharsets.UTF_8));
        Files.deleteIfExists(out.resolve("metrics.jsonl"));
    }

    /** Runs until the step budget is spent or early stopping ends the run. */
    public TrainState run() throws IOException {
        int N = c.batch() * c.ctx();
        listener.started(state.step(), c.steps());
        try (BufferedWriter metrics = Files.newBufferedWriter(out.resolve("metrics.jsonl"), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.APPEND)) {
            while (state.step() < c.steps() && !state.stopped()) {
                int step = state.step();
                long t0 = System.nanoTime();
                float lr = schedule.lr(step);
                Losses mean;
                try {
                    mean = gradients.compute(model, step);
                } catch (GradientSource.NonFiniteLoss bad) {
                    throw stop(metrics, step + 1, bad.getMessage());
                }
                if (!Double.isFinite(mean.total())) { // a data-parallel step: its workers' NaN arrives in the sum
                    throw stop(metrics, step + 1, "the training loss is " + mean.total());
                }
                listener.gradients(step + 1, model);
                double sumSq = Optimizer.gradSumSquares(model);
                double gradNorm = Math.sqrt(sumSq);
                if (!Double.isFinite(gradNorm)) {
                    throw stop(metrics, step + 1, "the gradient norm is " + gradNorm);
                }
                Optimizer.update(model, lr, step + 1, sumSq);
                be.sync();
                double seconds = (System.nanoTime() - t0) / 1e9;
                double tokensPerSecond = (double) N * c.accum() / seconds;
                writeTrainLine(metrics, step + 1, mean, lr, tokensPerSecond, gradNorm);
                metrics.flush(); // a line per step, readable while the run goes on
                listener.step(step + 1, mean, lr, tokensPerSecond);
                state = new TrainState(step + 1, state.bestValPpl(), state.bestStep(), state.evalsWithoutImprovement(), false);
                if ((step + 1) % c.evalEvery() == 0 || step + 1 == c.steps()) {
                    Evaluation e = evaluate();
                    if (!Double.isFinite(e.valLoss())) {
                        throw stop(metrics, step + 1, "the validation loss is " + e.valLoss());
                    }
                    boolean improved = e.valPpl() < state.bestValPpl() - c.minDeltaPpl();
                    int bad = improved ? 0 : state.evalsWithoutImprovement() + 1;
                    boolean stop = bad >= c.patience();
                    state = new TrainState(step + 1, improved ? e.valPpl() : state.bestValPpl(),
                            improved ? step + 1 : state.bestStep(), bad, stop);
                    writeEvalLine(metrics, step + 1, e);
                    metrics.flush();
                    if (improved) {
                        verifyOwnership();
                        Files.createDirectories(out.resolve("checkpoint"));
                        Checkpoints.saveModel(model, out.resolve("checkpoint").resolve("model.safetensors"), step + 1);
                    }
                    saveLast();
                    listener.evaluated(step + 1, e.valLoss(), e.valPpl(), e.exitLosses(), improved);
                    if (stop) {
                        listener.stopped("early stop: validation perplexity did not improve by more than "
                                + c.minDeltaPpl() + " for " + c.patience() + " evaluations");
                    }
                }
            }
        }
        return state;
    }

    /**
     * The exception that ends a run at a non-finite value, after a line saying so in the metrics: the step,
     * what went bad, the first tensor in model order that holds a NaN or an infinity, and the checkpoint
     * that stays the newest.
     */
    private NonFiniteException stop(BufferedWriter metrics, int step, String what) throws IOException {
        Path last = folder.lastCheckpoint();
        String message = "step " + step + ": " + what + "; " + NonFinite.firstBadTensor(model) + ". Training stopped; "
                + (last == null ? "no checkpoint was written" : "the newest checkpoint is " + last + " (step " + savedStep + ")");
        ObjectNode o = Configs.JSON.createObjectNode();
        o.put("type", "stopped");
        o.put("step", step);
        o.put("reason", "non-finite");
        o.put("message", message);
        metrics.write(Configs.JSON.writer().without(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT)
                .writeValueAsString(o));
        metrics.newLine();
        metrics.flush();
        return new NonFiniteException(message);
    }

    private void verifyOwnership() {
        if (lock != null) {
            lock.verify();
        }
    }

    /** Validation loss (token-weighted mean cross-entropy) and the loss of every exit (Table 5's convention). */
    public Evaluation evaluate() {
        int B = c.batch(), T = c.ctx();
        int[] inputs = new int[B * T], targets = new int[B * T];
        int batches = data.validBatches(B);
        if (c.evalBatches() > 0) {
            batches = Math.min(batches, c.evalBatches());
        }
        double sum = 0;
        double[] exitSums = new double[c.nLayers()];
        long tokens = 0;
        for (int i = 0; i < batches; i++) {
            int b = data.validBatch(i, B, inputs, targets);
            double[] s = model.evaluate(inputs, targets, b, true);
            sum += s[0];
            for (int l = 0; l < c.nLayers(); l++) {
                exitSums[l] += s[1 + l];
            }
            tokens += (long) b * T;
        }
        double loss = sum / tokens;
        double[] exits = new double[c.nLayers()];
        for (int l = 0; l < exits.length; l++) {
            exits[l] = exitSums[l] / tokens;
        }
        return new Evaluation(loss, Math.exp(loss), exits, tokens);
    }

    // ---- checkpoints --------------------------------------------------------------------------------

    /**
     * Writes model, optimizer and state into a fresh folder, then swaps it in for {@code last/}: the old
     * checkpoint is renamed to {@code last.prev/} first, so a kill at any moment leaves one complete
     * checkpoint ({@link RunDir#lastCheckpoint} falls back to {@code last.prev/}).
     */
    private void saveLast() throws IOException {
        verifyOwnership();
        Path tmp = out.resolve("last.tmp"), last = out.resolve("last"), prev = out.resolve("last.prev");
        if (!Files.exists(last) && Checkpoints.isComplete(prev)) {
            Files.move(prev, last, StandardCopyOption.ATOMIC_MOVE); // finish a swap a kill interrupted
        }
        RunDir.deleteTree(tmp);
        Files.createDirectories(tmp);
        Checkpoints.saveModel(model, tmp.resolve("model.safetensors"), state.step());
        Checkpoints.saveOptimizer(model, tmp.resolve("optimizer.safetensors"), state.step());
        AtomicFiles.write(tmp.resolve("state.json"), Configs.JSON.writeValueAsBytes(state));
        RunDir.deleteTree(prev);
        if (Files.exists(last)) {
            Files.move(last, prev, StandardCopyOption.ATOMIC_MOVE);
        }
        Files.move(tmp, last, StandardCopyOption.ATOMIC_MOVE);
        savedStep = state.step();
        RunDir.deleteTree(prev);
    }

    private void truncateMetrics(int step) throws IOException {
        Path f = out.resolve("metrics.jsonl");
        if (!Files.exists(f)) {
            return;
        }
        List<String> kept = new ArrayList<>();
        for (String line : Files.readAllLines(f, StandardCharsets.UTF_8)) {
            if (line.isBlank()) {
                continue;
            }
            try {
                if (Configs.JSON.readTree(line).path("step").asInt() <= step) {
                    kept.add(line);
                }
            } catch (IOException e) {
                // a line cut short by the kill: dropped
            }
        }
        AtomicFiles.write(f, (String.join("\n", kept) + (kept.isEmpty() ? "" : "\n")).getBytes(StandardCharsets.UTF_8));
    }

    // ---- metrics ----------------------------------------------------------------------------------

    private static void writeTrainLine(BufferedWriter w, int step, Losses l, float lr, double tps, double gradNorm)
            throws IOException {
        ObjectNode o = Configs.JSON.createObjectNode();
        o.put("type", "train");
        o.put("step", step);
        o.put("loss", l.total());
        o.put("lr", lr);
        o.put("tokens_per_s", Math.round(tps * 10) / 10.0);
        o.put("task_loss", l.task());
        if (!Double.isNaN(l.ee())) {
            o.put("ee_loss", l.ee());
        }
        o.put("quant_loss", l.quant());
        o.put("route_loss", l.route());
        o.put("grad_norm", gradNorm);
        w.write(Configs.JSON.writer().without(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT)
                .writeValueAsString(o));
        w.newLine();
    }

    private static void writeEvalLine(BufferedWriter w, int step, Evaluation e) throws IOException {
        ObjectNode o = Configs.JSON.createObjectNode();
        o.put("type", "eval");
        o.put("step", step);
        o.put("val_loss", e.valLoss());
        o.put("val_ppl", e.valPpl());
        o.put("ppl_convention", "exp(token-weighted mean cross-entropy)");
        ArrayNode a = o.putArray("exit_losses");
        for (double x : e.exitLosses()) {
            a.add(x);
        }
        w.write(Configs.JSON.writer().without(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT)
                .writeValueAsString(o));
        w.newLine();
    }
}
