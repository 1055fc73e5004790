package bitskip.model.data;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The text a run trains and validates on: WikiText-2 raw (the default), or any two UTF-8 text files
 * ({@code --train FILE --valid FILE}). Both are tokenized the same way, see {@link TokenFile}.
 *
 * @param name  what to call the data in logs and checkpoints, e.g. {@code wikitext-2-raw-v1}
 * @param train the training text
 * @param valid the validation text
 * @param test  the test text, or null when there is none
 */
public record DataSource(String name, Path train, Path valid, Path test) {

    /** WikiText-2 raw, located as {@link WikiText2#locate} does; dataDir (--data) may be null. */
    public static DataSource wikiText2(Path dataDir) throws IOException {
        return wikiText2(WikiText2.locate(dataDir));
    }

    public static DataSource wikiText2(WikiText2 w) {
        return new DataSource("wikitext-2-raw-v1", w.file(WikiText2.Split.TRAIN), w.file(WikiText2.Split.VALID),
                w.file(WikiText2.Split.TEST));
    }

    /** Two text files given by the user; both must exist. */
    public static DataSource files(Path train, Path valid) throws IOException {
        requireFile(train, "--train");
        requireFile(valid, "--valid");
        return new DataSource("files:" + train.getFileName() + "," + valid.getFileName(), train, valid, null);
    }

    private static void requireFile(Path p, String option) throws IOException {
        if (p == null) {
            throw new IllegalArgumentException(option + " FILE is required");
        }
        if (!Files.isRegularFile(p)) {
            throw new FileNotFoundException(option + " " + p + " does not exist or is not a file");
        }
        if (!Files.isReadable(p)) {
            throw new IOException(option + " " + p + " is not readable");
        }
    }
}
