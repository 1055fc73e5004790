import bitskip.model.cli.GenerateCommand;
import bitskip.model.cli.Main;

/** {@code java -cp … BitSkipGenerate [options]}: the generate command on its own. */
public final class BitSkipGenerate {
    private BitSkipGenerate() {}

    public static void main(String[] args) {
        System.exit(Main.run(new GenerateCommand(), args));
    }
}
