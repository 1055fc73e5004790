package bitskip.model.eval;

import bitskip.model.data.Blocks;
import bitskip.model.data.DataSource;
import bitskip.model.data.TokenFile;
import bitskip.model.data.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * The text a checkpoint is evaluated on, cut into blocks of the model's context: a split of WikiText-2
 * ({@code --data DIR --split valid|test}) or any UTF-8 text file ({@code --text FILE}), tokenized with GPT-2
 * BPE exactly as the training data is ({@link TokenFile}: line by line, cached). A file that is missing,
 * empty, not UTF-8, too short for one block, or holds token ids beyond the model's vocabulary is refused
 * with a message naming the file and the problem.
 *
 * @param name   what the output calls the text (e.g. {@code wikitext-2-raw-v1/valid})
 * @param blocks the non-overlapping blocks of ctx+1 tokens (see {@link Blocks})
 * @param tokens number of token ids in the text
 */
public record EvalText(String name, Blocks blocks, int tokens) {

    /** A split ("valid" or "test") of WikiText-2 located as training does (--data, $BITSKIP_DATA, cache). */
    public static EvalText wikiText2(Path dataDir, String split, int ctx, int vocab, Consumer<String> log)
            throws IOException {
        DataSource ds = DataSource.wikiText2(dataDir);
        Path file = switch (split) {
            case "valid" -> ds.valid();
            case "test" -> ds.test();
            default -> throw new IllegalArgumentException("--split must be valid or test, got '" + split + "'");
        };
        return tokenize(ds.name() + "/" + split, file, ctx, vocab, log);
    }

    /** Any UTF-8 text file. */
    public static EvalText file(Path file, int ctx, int vocab, Consumer<String> log) throws IOException {
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null, "text file to evaluate on does not exist");
        }
        if (!Files.isRegularFile(file)) {
            throw new IOException(file + " is not a regular file");
        }
        return tokenize(file.getFileName().toString(), file, ctx, vocab, log);
    }

    private static EvalText tokenize(String name, Path file, int ctx, int vocab, Consumer<String> log)
            throws IOException {
        Tokenizer tok = Tokenizer.gpt2();
        if (vocab < tok.vocabSize()) {
            throw new IllegalArgumentException("the checkpoint's vocab_size = " + vocab + " is smaller than the GPT-2 "
                    + "tokenizer's " + tok.vocabSize() + " tokens: it cannot be evaluated on text (" + file + ")");
        }
        TokenFile tf = TokenFile.load(file, TokenFile.defaultCacheFile(file, null, tok), tok, log);
        return ofTokens(name, file.toString(), tf.ids(), ctx, vocab);
    }

    /** Already tokenized ids (tests, synthetic data); source names them in messages. */
    public static EvalText ofTokens(String name, String source, int[] ids, int ctx, int vocab) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new IllegalArgumentException(source + ": token " + i + " has id " + ids[i]
                        + ", outside the model's vocabulary of " + vocab);
            }
        }
        // Blocks refuses a text too short for one block, naming source and the tokens needed.
        return new EvalText(name, new Blocks(ids, ctx, source), ids.length);
    }
}
