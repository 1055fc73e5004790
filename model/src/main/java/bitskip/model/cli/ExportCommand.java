package bitskip.model.cli;

import bitskip.model.data.DataSource;
import bitskip.model.data.TokenFile;
import bitskip.model.data.Tokenizer;
import bitskip.model.infer.DeployFile;
import bitskip.model.infer.DraftHead;
import bitskip.model.infer.InferenceModel;
import bitskip.model.infer.LmHead;
import bitskip.model.infer.Parallel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code bitskip export}: a training checkpoint to a deployable model file (packed ternary weights). */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Convert a training checkpoint (model.safetensors) to a deployable model: ternary weights "
                + "packed, one alpha per matrix, the LM head in float or int8, optionally a draft head for "
                + "self-speculation, the rest in float, the configuration in the metadata.")
public final class ExportCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "A model checkpoint (RUN/checkpoint/model.safetensors).")
    Path checkpoint;

    @Option(names = "--out", required = true, description = "The deployable model file to write (not the checkpoint itself).")
    Path out;

    @Option(names = "--packing", defaultValue = "i2_g128",
            description = "i2_g128 (2 bits per weight, loads without repacking) or tq1_5 (base 3, 1.6 bits). Default: ${DEFAULT-VALUE}.")
    String packing;

    @Option(names = "--head", defaultValue = "f32",
            description = "LM head: f32 (the trained weights) or int8 (per-row scales, a quarter of the bytes; its "
                    + "perplexity cost: bitskip eval --model). Default: ${DEFAULT-VALUE}.")
    String head;

    @Option(names = "--head-activation-bits", defaultValue = "9",
            description = "int8 head: bits of its input rows' codes, 9 (±255) or 8 (±127: oneDNN multiplies them in half "
                    + "the instructions; its perplexity cost: bitskip eval --model). Default: ${DEFAULT-VALUE}.")
    int headActivationBits;

    @Option(names = "--draft-tokens", defaultValue = "0",
            description = "Store a draft head of the N most frequent tokens of the training text for "
                    + "self-speculation (0 = none). Default: ${DEFAULT-VALUE}.")
    int draftTokens;

    @Option(names = "--data", description = "Folder with wiki.{train,valid,test}.raw whose train split chooses the "
            + "draft vocabulary (else $BITSKIP_DATA, else the download cache).")
    Path data;

    @Option(names = "--train", description = "A UTF-8 text file that chooses the draft vocabulary instead of WikiText-2's train split.")
    Path train;

    @Override
    public Integer call() throws Exception {
        DeployFile.Packing p = DeployFile.Packing.of(packing);
        LmHead.Format hf = LmHead.Format.of(head);
        int xLevels = LmHead.activationLevels(headActivationBits);
        if (hf == LmHead.Format.F32 && headActivationBits != 9) {
            throw new IllegalArgumentException("--head-activation-bits " + headActivationBits + " applies to --head int8, not f32");
        }
        if (draftTokens < 0) {
            throw new IllegalArgumentException("--draft-tokens must be >= 0, got " + draftTokens);
        }
        if (draftTokens == 0 && (data != null || train != null)) {
            throw new IllegalArgumentException("--data and --train choose the draft vocabulary: give --draft-tokens N too");
        }
        if (data != null && train != null) {
            throw new IllegalArgumentException("give --data DIR (WikiText-2) or --train FILE, not both");
        }
        InferenceModel m = DeployFile.fromCheckpoint(checkpoint, Parallel.serial()).withHead(hf, xLevels);
        DeployFile.DraftSource source = null;
        if (draftTokens > 0) {
            Tokenizer tok = Tokenizer.gpt2();
            if (m.vocabSize() != tok.vocabSize()) {
                throw new IllegalArgumentException("--draft-tokens counts GPT-2 tokens of a text, but the model's vocabulary has "
                        + m.vocabSize() + " tokens");
            }
            Path text = train != null ? train : DataSource.wikiText2(data).train();
            int[] ids = TokenFile.load(text, TokenFile.defaultCacheFile(text, null, tok), tok, System.err::println).ids();
            int[] draft = DraftHead.mostFrequent(ids, m.vocabSize(), draftTokens);
            source = new DeployFile.DraftSource("most-frequent", text.getFileName().toString(), DraftHead.coverage(ids, draft));
            m = m.withDraft(draft);
        }
        DeployFile.write(m, out, p, source);
        System.err.printf(Locale.ROOT, "exported %s -> %s (%s, %d layers, %.2f MB of packed ternary weights, %s head %.2f MB%s%s, file %.2f MB)%n",
                checkpoint, out, p.scheme, m.layers(), m.packedBytes() / 1e6, hf.id, m.head().bytes() / 1e6,
                hf == LmHead.Format.INT8 ? " with " + headActivationBits + "-bit activations" : "",
                source == null ? "" : String.format(Locale.ROOT, ", draft head of %d tokens covering %.1f%% of %s",
                        draftTokens, 100 * source.coverage(), source.text()),
                Files.size(out) / 1e6);
        return 0;
    }
}
