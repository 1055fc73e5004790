package bitskip.model.eval;

import bitskip.engine.Backend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;
import bitskip.model.train.Checkpoints;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * Evaluates a checkpoint: perplexity of the latent model as trained (final output and every exit, both
 * conventions), perplexity of the deployed 1.58-bit model ({@link Deployment}), and the ternary weight
 * statistics ({@link WeightStats}). The deployed model is computed from the checkpoint itself: a second
 * model whose quantized matrices are the transformed copies of the latent ones.
 */
public final class Evaluator {

    /**
     * @param batch      sequences per batch; 0 means the checkpoint's training batch
     * @param batches    batches to evaluate; 0 means the whole text
     * @param exits      also measure every exit layer (Table 5)
     * @param deployment null: none (skip the deployed model); else which deployed model
     */
    public record Options(int batch, int batches, boolean exits, Deployment deployment) {}

    /** A checkpoint's model, loaded. */
    public record Loaded(Path file, BitSkipConfig config, BitSkipModel model, int step) {}

    private Evaluator() {}

    /** A run folder stands for its best checkpoint ({@code DIR/checkpoint/model.safetensors}). */
    public static Path resolveCheckpoint(Path p) throws IOException {
        if (Files.isDirectory(p)) {
            for (Path c : new Path[] {p.resolve("checkpoint").resolve("model.safetensors"), p.resolve("model.safetensors")}) {
                if (Files.isRegularFile(c)) {
                    return c;
                }
            }
            throw new NoSuchFileException(p.toString(), null,
                    "a folder without checkpoint/model.safetensors or model.safetensors (is the run finished?)");
        }
        if (!Files.exists(p)) {
            throw new NoSuchFileException(p.toString(), null, "checkpoint file does not exist");
        }
        return p;
    }

    /**
     * Loads a checkpoint into a model planned for maxBatch sequences, with config (or the stored one when
     * null). A checkpoint whose tensors do not match its own configuration is refused naming the file.
     */
    public static Loaded load(Path file, Backend be, int maxBatch, BitSkipConfig config) throws IOException {
        BitSkipConfig stored = Checkpoints.readConfig(file);
        BitSkipConfig c = config != null ? config : stored;
        BitSkipModel m = new BitSkipModel(c, be, maxBatch);
        int step;
        try {
            step = Checkpoints.loadModel(m, file);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("checkpoint " + file + ": its configuration (" + stored.preset() + "/"
                    + stored.profile() + "/" + stored.variant() + ", d_model " + stored.dModel() + ", n_layers "
                    + stored.nLayers() + ", vocab_size " + stored.vocabSize() + ") cannot be loaded: "
                    + e.getMessage(), e);
        }
        return new Loaded(file, c, m, step);
    }

    public static EvalReport evaluate(Path checkpoint, EvalText text, Backend be, Options o, Consumer<String> log)
            throws IOException {
        Path file = resolveCheckpoint(checkpoint);
        BitSkipConfig stored = Checkpoints.readConfig(file);
        int B = o.batch() > 0 ? o.batch() : stored.batch();
        if (text.blocks().ctx() != stored.ctx()) {
            throw new IllegalArgumentException(text.name() + " was cut into blocks of " + text.blocks().ctx()
                    + " tokens, the checkpoint's context is " + stored.ctx());
        }
        Loaded latent = load(file, be, B, null);
        log.accept("evaluating the latent model (as trained) on " + text.name());
        long t0 = System.nanoTime();
        Perplexity lat = Perplexity.measure(latent.model(), text.blocks(), B, o.batches(), o.exits());
        log.accept(String.format(java.util.Locale.ROOT, "latent: ppl %.3f (%.1f s)", lat.ppl(), (System.nanoTime() - t0) / 1e9));
        WeightStats ws = WeightStats.of(latent.model());

        Perplexity dep = null;
        if (o.deployment() != null) {
            BitSkipConfig dc = o.deployment().config(stored);
            Loaded d = load(file, be, B, dc);
            for (Param p : d.model().quantizedWeights()) {
                float[] w = new float[p.size];
                be.download(p.value, w);
                be.upload(p.value, o.deployment().transform(w));
            }
            log.accept("evaluating the deployed model (" + o.deployment().id + ")");
            t0 = System.nanoTime();
            dep = Perplexity.measure(d.model(), text.blocks(), B, o.batches(), false);
            log.accept(String.format(java.util.Locale.ROOT, "deployed: ppl %.3f (%.1f s)", dep.ppl(), (System.nanoTime() - t0) / 1e9));
        }
        return new EvalReport(file.toString(), latent.step(), stored, text.name(), text.tokens(), o.deployment(), lat, dep, ws);
    }
}
