package bitskip.model.train;

/**
 * A NaN or an infinity stopped the work: a training step's loss or gradient norm, a validation loss, or a
 * tensor about to be written to a checkpoint. The command line ends with its own exit code
 * ({@code bitskip.model.cli.ExitCodes#NON_FINITE}).
 */
public final class NonFiniteException extends RuntimeException {
    public NonFiniteException(String message) {
        super(message);
    }
}
