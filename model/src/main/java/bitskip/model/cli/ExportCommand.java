package bitskip.model.cli;

import bitskip.model.infer.DeployFile;
import bitskip.model.infer.InferenceModel;
import bitskip.model.infer.Parallel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code bitskip export}: a training checkpoint to a deployable model file (packed ternary weights). */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Convert a training checkpoint (model.safetensors) to a deployable model: ternary weights "
                + "packed, one alpha per matrix, the rest in float, the configuration in the metadata.")
public final class ExportCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, description = "A model checkpoint (RUN/checkpoint/model.safetensors).")
    Path checkpoint;

    @Option(names = "--out", required = true, description = "The deployable model file to write.")
    Path out;

    @Option(names = "--packing", defaultValue = "i2_g128",
            description = "i2_g128 (2 bits per weight, loads without repacking) or tq1_5 (base 3, 1.6 bits). Default: ${DEFAULT-VALUE}.")
    String packing;

    @Override
    public Integer call() throws Exception {
        DeployFile.Packing p = DeployFile.Packing.of(packing);
        InferenceModel m = DeployFile.fromCheckpoint(checkpoint, Parallel.serial());
        DeployFile.write(m, out, p);
        System.err.printf("exported %s -> %s (%s, %d layers, %.2f MB of packed ternary weights, file %.2f MB)%n",
                checkpoint, out, p.scheme, m.layers(), m.packedBytes() / 1e6, Files.size(out) / 1e6);
        return 0;
    }
}
