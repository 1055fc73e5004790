package bitskip.model.cli;

/**
 * The cpu backend (which the backend registry names, so every command loads it) and the packed inference
 * kernels use the Vector API, an incubator module the JVM loads
 * only when asked ({@code --add-modules jdk.incubator.vector}; the launcher does). Started without it
 * ({@code java -cp … BitSkipTrain}), the first use dies with a NoClassDefFoundError; this says what to do.
 */
final class MissingVectorModule {
    static final String MESSAGE = "this JVM was started without the Vector API module, which the backends and the "
            + "inference kernels need: run ./bitskip, or add --add-modules jdk.incubator.vector to the java command";

    private MissingVectorModule() {}

    static boolean isIt(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof LinkageError && t.getMessage() != null && t.getMessage().contains("jdk/incubator/vector")) {
                return true;
            }
        }
        return false;
    }
}
