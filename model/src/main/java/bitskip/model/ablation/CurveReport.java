package bitskip.model.ablation;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Training runs side by side ({@code bitskip curves}): each run's final and best validation loss in a table,
 * and the validation and training loss curves of all of them in two figures. Made for comparisons such as
 * float32 against bf16 under two seeds, where the question is whether one curve lies within the others' spread.
 */
public final class CurveReport {
    private CurveReport() {}

    /** Writes OUT/curves.md, OUT/val-loss.png and OUT/train-loss.png for the labelled run folders; returns curves.md. */
    public static Path write(Path out, Map<String, Path> runs, String header) throws IOException {
        Files.createDirectories(out);
        StringBuilder s = new StringBuilder(header).append('\n');
        s.append("| run | folder | last step | final validation loss | final PPL | best validation loss (step) |\n");
        s.append("|---|---|---:|---:|---:|---:|\n");
        Map<String, List<double[]>> val = new LinkedHashMap<>(), train = new LinkedHashMap<>();
        for (Map.Entry<String, Path> e : runs.entrySet()) {
            RunFolder r = RunFolder.read(e.getValue());
            if (r.valPpl().isEmpty()) {
                throw new IllegalArgumentException(e.getValue() + ": no validation in its metrics.jsonl (run " + e.getKey() + ")");
            }
            double[] last = r.last(), best = r.best();
            s.append(String.format(Locale.ROOT, "| %s | `%s` | %d | %.4f | %.2f | %.4f (%d) |%n", e.getKey(), e.getValue().getFileName(),
                    r.lastStep(), Math.log(last[1]), last[1], Math.log(best[1]), (int) best[0]));
            List<double[]> v = new ArrayList<>();
            for (double[] p : r.valPpl()) {
                v.add(new double[] {p[0], Math.log(p[1])});
            }
            val.put(e.getKey(), v);
            List<double[]> t = new ArrayList<>();
            for (double[] p : r.trainLoss()) {
                t.add(new double[] {p[0], p[1]});
            }
            train.put(e.getKey(), t);
        }
        Charts.lines(out.resolve("val-loss.png"), "Validation loss (token-weighted cross-entropy)", "step", "loss", false, val);
        Charts.lines(out.resolve("train-loss.png"), "Training task loss (final-layer cross-entropy)", "step", "loss", false, train);
        s.append("\n![validation loss](val-loss.png)\n\n![training loss](train-loss.png)\n");
        Path f = out.resolve("curves.md");
        Files.writeString(f, s.toString(), StandardCharsets.UTF_8);
        return f;
    }
}
