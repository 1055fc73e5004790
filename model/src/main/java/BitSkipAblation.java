import bitskip.model.cli.AblationCommand;
import bitskip.model.cli.Main;

/** {@code java -cp … BitSkipAblation [options]}: the ablation command on its own. */
public final class BitSkipAblation {
    private BitSkipAblation() {}

    public static void main(String[] args) {
        System.exit(Main.run(new AblationCommand(), args));
    }
}
