package bitskip.model.data;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.train.BatchSource;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The training and validation token blocks of a run: WikiText-2 (from --data, $BITSKIP_DATA or the
 * download cache) or two UTF-8 text files, tokenized once with GPT-2 BPE and cached as token files.
 */
public final class TrainingData implements BatchSource {
    private final DataSource source;
    private final Blocks train;
    private final Blocks valid;
    private final Batcher trainBatcher;
    private final Batcher validBatcher;
    private final int accum;

    private TrainingData(DataSource source, Blocks train, Blocks valid, BitSkipConfig c) {
        this.source = source;
        this.train = train;
        this.valid = valid;
        this.trainBatcher = new Batcher(train, c.batch(), c.seed());
        this.validBatcher = new Batcher(valid, c.batch(), c.seed());
        this.accum = c.accum();
    }

    /** Locates (and if needed downloads and tokenizes) the data of a run; log receives what happened. */
    public static TrainingData open(BitSkipConfig c, Path dataDir, Path trainFile, Path validFile, PrintStream log)
            throws IOException {
        if ((trainFile == null) != (validFile == null)) {
            throw new IllegalArgumentException("--train and --valid go together: give both text files or neither");
        }
        DataSource ds = trainFile != null ? DataSource.files(trainFile, validFile) : DataSource.wikiText2(dataDir);
        Tokenizer tok = Tokenizer.gpt2();
        if (c.vocabSize() < tok.vocabSize()) {
            throw new IllegalArgumentException("configuration field vocab_size = " + c.vocabSize()
                    + " is smaller than the GPT-2 tokenizer's " + tok.vocabSize() + " tokens");
        }
        TokenFile tr = TokenFile.load(ds.train(), TokenFile.defaultCacheFile(ds.train(), null, tok), tok, log::println);
        TokenFile va = TokenFile.load(ds.valid(), TokenFile.defaultCacheFile(ds.valid(), null, tok), tok, log::println);
        return new TrainingData(ds, Blocks.of(tr, c.ctx()), Blocks.of(va, c.ctx()), c);
    }

    public String describe() {
        return String.format(Locale.ROOT, "%s: train %,d blocks, valid %,d blocks of %d tokens",
                source.name(), train.count(), valid.count(), train.ctx());
    }

    @Override
    public void trainBatch(int step, int micro, int B, int[] inputs, int[] targets) {
        trainBatcher.trainBatch((long) step * accum + micro, inputs, targets);
    }

    @Override
    public int validBatches(int B) {
        return validBatcher.evalBatchCount(0);
    }

    @Override
    public int validBatch(int i, int B, int[] inputs, int[] targets) {
        Batcher.Batch b = validBatcher.evalBatch(i);
        System.arraycopy(b.inputs(), 0, inputs, 0, b.rows() * b.ctx());
        System.arraycopy(b.targets(), 0, targets, 0, b.rows() * b.ctx());
        return b.rows();
    }
}
