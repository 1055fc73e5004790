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
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code bitskip eval}: perplexity (both conventions, every exit), latent vs deployed 1.58-bit, weight statistics. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Evaluate a checkpoint: validation/test perplexity (token-weighted and mean of batch means), "
                + "per-exit perplexity (Table 5), latent vs deployed 1.58-bit perplexity (Table 3), weight statistics (Table 4).")
public final class EvalCommand implements Callable<Integer> {

    @Option(names = "--checkpoint", required = true,
            description = "A model.safetensors, or a run folder (its checkpoint/model.safetensors).")
    Path checkpoint;

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
}
