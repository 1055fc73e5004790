package bitskip.model.cli;

import bitskip.model.ablation.CurveReport;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code bitskip curves}: run folders side by side, their final validation losses and their loss curves. */
@Command(name = "curves", mixinStandardHelpOptions = true,
        description = "Put training runs side by side: OUT/curves.md (final and best validation loss of each) and the "
                + "validation and training loss curves of all of them (val-loss.png, train-loss.png).")
public final class CurvesCommand implements Callable<Integer> {

    @Parameters(arity = "1..*", paramLabel = "LABEL=RUN_DIR", description = "A label and the run folder (with metrics.jsonl).")
    List<String> runs;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Where curves.md and the figures go.")
    Path out;

    @Override
    public Integer call() throws Exception {
        Map<String, Path> m = new LinkedHashMap<>();
        for (String r : runs) {
            int eq = r.indexOf('=');
            if (eq <= 0 || eq == r.length() - 1) {
                throw new IllegalArgumentException("run '" + r + "': give LABEL=RUN_DIR");
            }
            if (m.put(r.substring(0, eq), Path.of(r.substring(eq + 1))) != null) {
                throw new IllegalArgumentException("label '" + r.substring(0, eq) + "' given twice");
            }
        }
        List<String> args = new java.util.ArrayList<>(List.of("--out", out.toString()));
        args.addAll(runs);
        String header = ReportHeader.of("Training curves", "curves", args);
        System.err.println("curves: " + CurveReport.write(out, m, header));
        return 0;
    }
}
