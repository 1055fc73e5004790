package bitskip.model.cli;

import bitskip.model.ablation.SeedComparison;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code bitskip seeds}: puts the ablation folders of one study run with different seeds side by side
 * ({@code OUT/seeds.md}): per run the best validation perplexity per seed, mean and spread, and each of the
 * reports' comparisons called real only where it exceeds the spread between the seeds.
 */
@Command(name = "seeds", mixinStandardHelpOptions = true,
        description = "Compare ablation folders of the same runs under different seeds: OUT/seeds.md with each run's mean and "
                + "spread, and which differences exceed the spread between seeds.")
public final class SeedsCommand implements Callable<Integer> {

    @Parameters(arity = "2..*", paramLabel = "FOLDER", description = "Ablation folders (each with runs/ID/), one per seed.")
    List<Path> folders;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Where seeds.md goes.")
    Path out;

    @Override
    public Integer call() throws Exception {
        List<String> args = new java.util.ArrayList<>(List.of("--out", out.toString()));
        folders.forEach(f -> args.add(f.toString()));
        Path f = new SeedComparison(folders).write(out, ReportHeader.of("Seed comparison", "seeds", args));
        System.err.println("seed comparison: " + f);
        return 0;
    }
}
