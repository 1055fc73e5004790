package bitskip.model.cli;

import bitskip.model.io.RunLock;
import bitskip.model.train.NonFiniteException;
import java.io.IOException;
import java.io.UncheckedIOException;
import picocli.CommandLine;

/**
 * The exit codes of every command (documented in the README). Bad input of any kind (an option, a file, a
 * configuration field) is 2 with one line naming it, never a stack trace.
 */
public final class ExitCodes {
    /** Done. */
    public static final int OK = 0;
    /** The work failed (an ablation run failed; an error that is not the input's). */
    public static final int FAILED = 1;
    /** Bad input: an option, a file, a configuration field; also picocli's usage errors. */
    public static final int BAD_INPUT = CommandLine.ExitCode.USAGE;
    /** The output folder is owned by another live run ({@code run.lock}). */
    public static final int FOLDER_IN_USE = 3;
    /** A NaN or an infinity stopped training (the newest checkpoint is the last good one). */
    public static final int NON_FINITE = 4;

    private ExitCodes() {}

    static int of(Throwable e) {
        if (e instanceof RunLock.HeldException) {
            return FOLDER_IN_USE;
        }
        if (e instanceof NonFiniteException) {
            return NON_FINITE;
        }
        if (e instanceof IllegalArgumentException || e instanceof IOException || e instanceof UncheckedIOException
                || e instanceof CommandLine.ParameterException || MissingVectorModule.isIt(e)) {
            return BAD_INPUT;
        }
        return FAILED;
    }
}
