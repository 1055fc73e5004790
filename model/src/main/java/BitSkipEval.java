import bitskip.model.cli.EvalCommand;
import bitskip.model.cli.Main;

/** {@code java -cp … BitSkipEval [options]}: the eval command on its own. */
public final class BitSkipEval {
    private BitSkipEval() {}

    public static void main(String[] args) {
        System.exit(Main.run(new EvalCommand(), args));
    }
}
