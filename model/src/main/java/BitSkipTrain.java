import bitskip.model.cli.Main;
import bitskip.model.cli.TrainCommand;

/** {@code java -cp … BitSkipTrain [options]}: the train command on its own. */
public final class BitSkipTrain {
    private BitSkipTrain() {}

    public static void main(String[] args) {
        System.exit(Main.run(new TrainCommand(), args));
    }
}
