package bitskip.model.cli;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.eval.Deployment;
import bitskip.model.eval.EvalReport;
import bitskip.model.eval.EvalText;
import bitskip.model.eval.Evaluator;
import bitskip.model.io.AtomicFiles;
import bitskip.model.config.Configs;
import bitskip.model.train.Checkpoints;
import bitskip.model.eval.Perplexity;
import bitskip.model.infer.DeployFile;
import bitskip.model.infer.DeployedPerplexity;
import bitskip.model.infer.InferenceModel;
import bitskip.model.infer.LmHead;
import bitskip.model.infer.Parallel;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Locale;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bitskip eval}: perplexity (both conventions, every exit), latent vs deployed 1.58-bit, weight statistics
 * of a checkpoint; or the perplexity of a deployable model file computed by the inference path.
 */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Evaluate a checkpoint: validation/test perplexity (token-weighted and mean of batch means), "
                + "per-exit perplexity (Table 5), latent vs deployed 1.58-bit perplexity (Table 3), weight statistics (Table 4). "
                + "Or, with --model, a deployable model file (bitskip export) as it generates: its packed weights and its head.")
public final class EvalCommand implements Callable<Integer> {

    @Option(names = "--checkpoint",
            description = "A model.safetensors, or a run folder (its checkpoint/model.safetensors).")
    Path checkpoint;

    @Option(names = "--model", description = "A deployable model file (bitskip export) instead of a checkpoint: its "
            + "perplexity through the inference path (packed ternary projections, the file's float or int8 head).")
    Path model;

    @Option(names = "--threads", description = "With --model: worker threads (default: all cores).")
    Integer threads;

    @Option(names = "--data", description = "Folder with wiki.{train,valid,test}.raw (else $BITSKIP_DATA, else the download cache).")
    Path data;

    @Option(names = "--text", description = "Evaluate on this UTF-8 text file instead of WikiText-2.")
    Path text;

    @Option(names = "--split", defaultValue = "valid", description = "WikiText-2 split: valid or test (default: ${DEFAULT-VALUE}).")
    String split;

    @Option(names = "--batch", defaultValue = "0", description = "Sequences per batch (default: the checkpoint's training batch).")
    int batch;

    @Option(names = "--batches", defaultValue = "0", description = "Evaluate the first N batches only (default: the whole text).")
    int batches;

    @Option(names = "--deployed", defaultValue = "auto",
            description = "Deployed 1.58-bit model: packed (the paper's intent), requantized (the authors' double "
                    + "ternarization), auto (requantized under the reference profile, else packed), none.")
    String deployed;

    @Option(names = "--no-exits", description = "Skip the per-exit perplexities.")
    boolean noExits;

    @Option(names = "--json", description = "Also write the results as JSON to this file.")
    Path json;

    @Option(names = "--csv", description = "Also write the results as CSV to this file.")
    Path csv;

    @Option(names = "--backend", description = "Backend (default: -Dbitskip.backend, $BITSKIP_BACKEND, else cpu).")
    String backend;

    @Override
    public Integer call() throws Exception {
        if ((checkpoint == null) == (model == null)) {
            throw new IllegalArgumentException("give --checkpoint F (a training checkpoint) or --model F (a deployable file), one of them");
        }
        if (text != null && data != null) {
            throw new IllegalArgumentException("give --data DIR (WikiText-2) or --text FILE, not both");
        }
        if (text != null && !split.equals("valid")) {
            throw new IllegalArgumentException("--split applies to WikiText-2; with --text the whole file is evaluated");
        }
        if (!split.equals("valid") && !split.equals("test")) {
            throw new IllegalArgumentException("--split must be valid or test, got '" + split + "'");
        }
        if (batch < 0 || batches < 0) {
            throw new IllegalArgumentException("--batch and --batches must be >= 0");
        }
        if (model != null) {
            return evalDeployed();
        }
        if (threads != null) {
            throw new IllegalArgumentException("--threads applies to --model (a checkpoint is evaluated on --backend)");
        }
        Path file = Evaluator.resolveCheckpoint(checkpoint);
        BitSkipConfig c = Checkpoints.readConfig(file);
        Deployment dep = deployed.equals("none") ? null : Deployment.parse(deployed, c.profile());
        EvalText t = text != null
                ? EvalText.file(text, c.ctx(), c.vocabSize(), System.err::println)
                : EvalText.wikiText2(data, split, c.ctx(), c.vocabSize(), System.err::println);
        EvalReport r;
        try (Backend be = Backends.create(backend)) {
            r = Evaluator.evaluate(file, t, be, new Evaluator.Options(batch, batches, !noExits, dep), System.err::println);
        }
        System.out.print(r.toMarkdown());
        if (json != null) {
            AtomicFiles.write(json, Configs.JSON.writeValueAsBytes(r.toJson()));
        }
        if (csv != null) {
            AtomicFiles.write(csv, r.toCsv().getBytes(StandardCharsets.UTF_8));
        }
        return 0;
    }

    /** --model: the deployable file's perplexity, final output and (unless --no-exits) every exit. */
    private int evalDeployed() throws Exception {
        if (backend != null || !deployed.equals("auto")) {
            throw new IllegalArgumentException((backend != null ? "--backend" : "--deployed")
                    + " applies to --checkpoint; a deployable file is evaluated by the inference path");
        }
        if (threads != null && threads < 1) {
            throw new IllegalArgumentException("--threads must be >= 1, got " + threads);
        }
        Parallel par = threads == null ? Parallel.ofAllCores() : new Parallel(threads);
        InferenceModel m = DeployFile.read(model, par);
        BitSkipConfig c = m.config;
        int B = batch > 0 ? batch : c.batch();
        EvalText t = text != null
                ? EvalText.file(text, c.ctx(), c.vocabSize(), System.err::println)
                : EvalText.wikiText2(data, split, c.ctx(), c.vocabSize(), System.err::println);
        String head = m.head().describe();
        System.err.println("evaluating " + model + " (" + head + ", " + par.threads() + " threads) on " + t.name());
        long t0 = System.nanoTime();
        Perplexity p = DeployedPerplexity.measure(m, t.blocks(), B, batches, !noExits, System.err::println);
        double seconds = (System.nanoTime() - t0) / 1e9;
        StringBuilder s = new StringBuilder();
        s.append("# Evaluation of the deployable model ").append(model).append("\n\n");
        s.append(String.format(Locale.ROOT, "%s / %s / %s, %s%s; %s: %,d tokens, %d batches of %d x %d (%,d predicted tokens); %.1f s%n%n",
                c.preset(), c.profile(), c.variant(), head,
                m.draft() == null ? "" : ", draft head of " + m.draft().size() + " tokens", t.name(), t.tokens(),
                p.batches(), p.batchSize(), c.ctx(), p.tokens(), seconds));
        s.append("| model | PPL token-weighted | PPL mean of batch means | loss token-weighted |\n|---|---:|---:|---:|\n");
        s.append(String.format(Locale.ROOT, "| deployed file (%s) | %.3f | %.3f | %.4f |%n%n", head, p.ppl(), p.pplBatchMean(), p.loss()));
        if (p.exitLoss() != null) {
            s.append("| exit layer | loss | PPL token-weighted | PPL mean of batch means |\n|---:|---:|---:|---:|\n");
            for (int l = 0; l < p.exitLoss().length; l++) {
                s.append(String.format(Locale.ROOT, "| %d | %.4f | %.3f | %.3f |%n", l + 1, p.exitLoss()[l], p.exitPpl(l),
                        p.exitPplBatchMean(l)));
            }
        }
        System.out.print(s);
        ObjectNode j = Configs.JSON.createObjectNode();
        j.put("model", model.toString()).put("head", m.head().format.id);
        if (m.head().format == LmHead.Format.INT8) {
            j.put("head_activation_levels", m.head().xLevels);
        }
        j.put("text", t.name()).put("tokens", p.tokens())
                .put("batches", p.batches()).put("batch_size", p.batchSize());
        j.putObject("ppl").put(Perplexity.TOKEN_WEIGHTED, p.ppl()).put(Perplexity.MEAN_OF_BATCH_MEANS, p.pplBatchMean());
        j.put("loss", p.loss());
        StringBuilder rows = new StringBuilder("exit,loss,ppl_" + Perplexity.TOKEN_WEIGHTED + ",ppl_" + Perplexity.MEAN_OF_BATCH_MEANS + "\n");
        rows.append(String.format(Locale.ROOT, "final,%.6f,%.6f,%.6f%n", p.loss(), p.ppl(), p.pplBatchMean()));
        if (p.exitLoss() != null) {
            var exits = j.putArray("exits");
            for (int l = 0; l < p.exitLoss().length; l++) {
                exits.addObject().put("layer", l + 1).put("loss", p.exitLoss()[l]).put("ppl_" + Perplexity.TOKEN_WEIGHTED, p.exitPpl(l))
                        .put("ppl_" + Perplexity.MEAN_OF_BATCH_MEANS, p.exitPplBatchMean(l));
                rows.append(String.format(Locale.ROOT, "%d,%.6f,%.6f,%.6f%n", l + 1, p.exitLoss()[l], p.exitPpl(l), p.exitPplBatchMean(l)));
            }
        }
        if (json != null) {
            AtomicFiles.write(json, Configs.JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(j));
        }
        if (csv != null) {
            AtomicFiles.write(csv, rows.toString().getBytes(StandardCharsets.UTF_8));
        }
        return 0;
    }
}
