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
import java.util.stream.Stream;

/**
 * {@code OUT/seeds.md}: the same ablation run with different seeds (one ablation folder per seed), put side by
 * side so that every finding comes with its noise level. For each run present in every folder: its best
 * validation perplexity per seed, the mean and the spread (max − min); then the comparisons the reports make
 * (Hadamard, early exit, each exit-head design against the shared head and against h-only), each called
 * <em>real</em> only when the two runs' means differ by more than the larger of their two spreads and every
 * seed's difference has the same sign, and "within the seed spread" otherwise.
 */
public final class SeedComparison {
    private static final String NA = AblationReport.fmt(Double.NaN);

    /** A comparison the study asks about: is {@code a} worse than {@code b} (a higher perplexity)? */
    record Pair(String question, String a, String b) {}

    private final List<Path> folders;
    /** run id → one RunFolder per seed folder (runs missing from any folder are left out). */
    private final Map<String, List<RunFolder>> runs = new LinkedHashMap<>();

    public SeedComparison(List<Path> folders) throws IOException {
        if (folders.size() < 2) {
            throw new IllegalArgumentException("a seed comparison needs at least two ablation folders, got " + folders.size());
        }
        this.folders = List.copyOf(folders);
        List<String> ids = runIds(folders.get(0));
        for (String id : ids) {
            List<RunFolder> perSeed = new ArrayList<>();
            for (Path f : folders) {
                Path d = f.resolve("runs").resolve(id);
                if (Files.isDirectory(d)) {
                    perSeed.add(RunFolder.read(d));
                }
            }
            if (perSeed.size() == folders.size()) {
                runs.put(id, perSeed);
            }
        }
        if (runs.isEmpty()) {
            throw new IllegalArgumentException("no run is in all of " + folders + " (each must hold runs/ID/ folders of one ablation)");
        }
    }

    private static List<String> runIds(Path folder) throws IOException {
        Path r = folder.resolve("runs");
        if (!Files.isDirectory(r)) {
            throw new IllegalArgumentException(folder + " is not an ablation folder: it has no runs/ folder");
        }
        try (Stream<Path> s = Files.list(r)) {
            return s.filter(Files::isDirectory).map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /** Best validation perplexity per seed, NaN where a run has not validated yet. */
    double[] best(String id) {
        return runs.get(id).stream().mapToDouble(r -> r.best() == null ? Double.NaN : r.best()[1]).toArray();
    }

    /** The geometric mean of the early exits' perplexities per seed (NaN without an evaluation with exits). */
    double[] earlyExits(String id) {
        return runs.get(id).stream().mapToDouble(r -> r.exitPpl() == null ? Double.NaN : AblationReport.meanEarlyExit(r.exitPpl()))
                .toArray();
    }

    static double mean(double[] x) {
        double s = 0;
        for (double v : x) {
            s += v;
        }
        return s / x.length;
    }

    static double spread(double[] x) {
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (double v : x) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        return hi - lo;
    }

    /**
     * "a worse" / "a better" when the means differ by more than the larger spread and every seed agrees in sign,
     * else "within the seed spread"; null when a value is missing.
     */
    static String verdict(double[] a, double[] b) {
        for (int i = 0; i < a.length; i++) {
            if (Double.isNaN(a[i]) || Double.isNaN(b[i])) {
                return null;
            }
        }
        double d = mean(a) - mean(b), noise = Math.max(spread(a), spread(b));
        boolean allWorse = true, allBetter = true;
        for (int i = 0; i < a.length; i++) {
            allWorse &= a[i] > b[i];
            allBetter &= a[i] < b[i];
        }
        if (Math.abs(d) > noise && (d > 0 ? allWorse : allBetter)) {
            return d > 0 ? "real: worse" : "real: better";
        }
        return "within the seed spread";
    }

    /** The comparisons to make, for the runs that exist: per profile, the factorial's and the exit-head study's. */
    List<Pair> pairs() {
        List<Pair> p = new ArrayList<>();
        List<String> profiles = runs.keySet().stream().filter(id -> id.endsWith("-baseline") || id.endsWith("-bitskip"))
                .map(id -> id.substring(0, id.indexOf('-'))).distinct().toList();
        for (String pr : profiles) {
            p.add(new Pair("Hadamard (no early exit): h-only vs baseline", pr + "-h-only", pr + "-baseline"));
            p.add(new Pair("Hadamard (early exit): bitskip vs ee-only", pr + "-bitskip", pr + "-ee-only"));
            p.add(new Pair("early exit hurts the last layer (no Hadamard): ee-only vs baseline", pr + "-ee-only", pr + "-baseline"));
            p.add(new Pair("early exit hurts the last layer (Hadamard): bitskip vs h-only", pr + "-bitskip", pr + "-h-only"));
            for (String id : runs.keySet()) {
                if (id.startsWith(pr + "-bitskip-")) {
                    String design = id.substring((pr + "-bitskip-").length());
                    p.add(new Pair("last layer, exit head " + design + ": vs h-only", id, pr + "-h-only"));
                    p.add(new Pair("last layer, exit head " + design + ": vs the shared head", id, pr + "-bitskip"));
                }
            }
        }
        return p.stream().filter(x -> runs.containsKey(x.a()) && runs.containsKey(x.b())).toList();
    }

    /** Writes OUT/seeds.md and returns its path. */
    public Path write(Path out, String header) throws IOException {
        Files.createDirectories(out);
        StringBuilder s = new StringBuilder(header).append('\n');
        List<String> seeds = new ArrayList<>();
        for (Path f : folders) {
            seeds.add("`" + f.getFileName() + "`");
        }
        s.append("## Best validation perplexity per seed\n\n| run |");
        for (String f : seeds) {
            s.append(' ').append(f).append(" |");
        }
        s.append(" mean | spread (max − min) | spread / mean |\n|---|").append("---:|".repeat(seeds.size() + 3)).append('\n');
        for (String id : runs.keySet()) {
            row(s, "`" + id + "`", best(id));
        }
        s.append("\n## Early exits: geometric mean of the perplexities of the exits before the last, per seed\n\n| run |");
        for (String f : seeds) {
            s.append(' ').append(f).append(" |");
        }
        s.append(" mean | spread (max − min) | spread / mean |\n|---|").append("---:|".repeat(seeds.size() + 3)).append('\n');
        for (String id : runs.keySet()) {
            double[] e = earlyExits(id);
            if (!Double.isNaN(mean(e)) && !id.endsWith("-baseline") && !id.endsWith("-h-only")) {
                row(s, "`" + id + "`", e);
            }
        }
        s.append("\n## Findings with their noise level\n\nA difference is called real only when the two runs' mean best "
                + "perplexities differ by more than the larger of their spreads between seeds, and every seed's difference has the "
                + "same sign.\n\n| question | a | b | mean a | mean b | a / b | verdict (a against b) |\n|---|---|---|---:|---:|---:|---|\n");
        for (Pair p : pairs()) {
            double[] a = best(p.a()), b = best(p.b());
            String v = verdict(a, b);
            s.append(String.format(Locale.ROOT, "| %s | `%s` | `%s` | %s | %s | %s | %s |%n", p.question(), p.a(), p.b(),
                    AblationReport.fmt(mean(a)), AblationReport.fmt(mean(b)),
                    v == null ? NA : String.format(Locale.ROOT, "%+.1f%%", 100 * (mean(a) / mean(b) - 1)), v == null ? NA : v));
        }
        for (String id : runs.keySet()) {
            int dash = id.indexOf("-bitskip-");
            if (dash > 0) {
                String shared = id.substring(0, dash) + "-bitskip";
                if (runs.containsKey(shared)) {
                    double[] a = earlyExits(id), b = earlyExits(shared);
                    String v = verdict(a, b);
                    s.append(String.format(Locale.ROOT, "| early exits, exit head %s: vs the shared head | `%s` | `%s` | %s | %s | %s | %s |%n",
                            id.substring(dash + "-bitskip-".length()), id, shared, AblationReport.fmt(mean(a)), AblationReport.fmt(mean(b)),
                            v == null ? NA : String.format(Locale.ROOT, "%+.1f%%", 100 * (mean(a) / mean(b) - 1)), v == null ? NA : v));
                }
            }
        }
        Path f = out.resolve("seeds.md");
        Files.writeString(f, s.toString(), StandardCharsets.UTF_8);
        return f;
    }

    private static void row(StringBuilder s, String label, double[] x) {
        s.append("| ").append(label).append(" |");
        for (double v : x) {
            s.append(' ').append(AblationReport.fmt(v)).append(" |");
        }
        double m = mean(x), sp = spread(x);
        s.append(' ').append(AblationReport.fmt(m)).append(" | ").append(AblationReport.fmt(sp)).append(" | ")
                .append(Double.isNaN(m) ? NA : String.format(Locale.ROOT, "%.1f%%", 100 * sp / m)).append(" |\n");
    }
}
