package bitskip.model.ablation;

import bitskip.model.config.Presets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The runs of an ablation: the 2×2 factorial of Table 2 (baseline, h-only, ee-only, bitskip) and the
 * hyper-parameter sweeps of Tables 6–8, for each requested profile.
 *
 * <p>Sweeps (section 4.3 and the appendix) train the non-Hadamard early-exit model (variant ee-only:
 * lambda_ee 0.3, p_max 0.7, quadratic skipping): Table 6 sweeps lambda_r in {0, 0.01, 0.05, 0.1, 0.2} with
 * lambda_q = 0; Table 7 sweeps lambda_q over the same values with lambda_r = 0.2; Table 8 sweeps p_max in
 * {0.7, 0.5, 0.2} with routing ON (lambda_r = 0.2) or OFF (lambda_r = 0: fixed layer-skip dropout only),
 * lambda_q = 0.05. Rows of different tables with the same settings share one run.
 *
 * <p>The exit-head study (issue 17, the paper's closing recommendation tested) trains bitskip with each exit-head
 * design at the factorial's budget and seed: the factorial's bitskip is the shared head, and its h-only the model
 * without early exit that the final layer is compared with; {@code adapter} (a residual adapter per exit),
 * {@code lowrank} (a rank-r correction of the head per exit) and {@code gradstop} (the shared head, with the
 * early-exit loss's gradient stopped at the head) are new runs.
 */
public final class AblationPlan {
    public static final List<String> SWEEP_VALUES = List.of("0", "0.01", "0.05", "0.1", "0.2");
    public static final List<String> P_MAX_VALUES = List.of("0.7", "0.5", "0.2");

    /** What an ablation can run, as {@code --runs} spells it; {@code all} is every group. */
    public static final List<String> GROUPS = List.of("factorial", "sweeps", "exit-heads");
    /**
     * The exit-head study's default rank for lowrank: 16 adds V·16 multiply-adds per exited token to the head's
     * V·C (+12.5% at tiny's C = 128, +3% at C = 512) and V·16 parameters per exit.
     */
    public static final int DEFAULT_EXIT_RANK = 16;

    /** A table row of a sweep: its label and the run that fills it. */
    public record SweepRow(String table, String setting, String runId) {}

    /** A row of the exit-head study: the design's label and the run that trained it. */
    public record ExitHeadRow(String design, String runId) {}

    private final List<RunSpec> runs = new ArrayList<>();
    private final Map<String, List<SweepRow>> sweepRows = new LinkedHashMap<>();
    private final Map<String, List<ExitHeadRow>> exitHeadRows = new LinkedHashMap<>();

    private AblationPlan() {}

    /**
     * @param what     a comma-separated list of factorial, sweeps, exit-heads, or all (every group)
     * @param exitRank the rank r of the exit-head study's lowrank run (used with exit-heads)
     */
    public static AblationPlan build(List<String> profiles, String what, int steps, long seed, int sweepSteps,
                                     long sweepSeed, int exitRank) {
        java.util.Set<String> groups = new java.util.LinkedHashSet<>();
        for (String g : what.split(",")) {
            g = g.trim();
            if (g.equals("all")) {
                groups.addAll(GROUPS);
            } else if (GROUPS.contains(g)) {
                groups.add(g);
            } else {
                throw new IllegalArgumentException("--runs takes " + String.join(", ", GROUPS) + " or all (comma-separated), got '" + g + "'");
            }
        }
        if (groups.contains("exit-heads") && exitRank < 1) {
            throw new IllegalArgumentException("--exit-rank must be >= 1 for the exit-head study's lowrank run, got " + exitRank);
        }
        AblationPlan p = new AblationPlan();
        for (String profile : profiles) {
            if (!Presets.PROFILES.contains(profile)) {
                throw new IllegalArgumentException("unknown profile '" + profile + "'; known: " + String.join(", ", Presets.PROFILES));
            }
            if (groups.contains("factorial")) {
                for (String v : Presets.VARIANTS) {
                    p.factorial(profile, v, steps, seed);
                }
            }
            if (groups.contains("exit-heads")) {
                List<ExitHeadRow> rows = new ArrayList<>();
                rows.add(new ExitHeadRow("none (h-only)", p.factorial(profile, "h-only", steps, seed)));
                rows.add(new ExitHeadRow("shared", p.factorial(profile, "bitskip", steps, seed)));
                rows.add(new ExitHeadRow("adapter", p.exitHead(profile, "adapter", Map.of("exit_head", "adapter"), steps, seed)));
                rows.add(new ExitHeadRow("lowrank r=" + exitRank, p.exitHead(profile, "lowrank",
                        Map.of("exit_head", "lowrank", "exit_rank", Integer.toString(exitRank)), steps, seed)));
                rows.add(new ExitHeadRow("shared, grad stop", p.exitHead(profile, "gradstop", Map.of("exit_head_grad_stop", "true"),
                        steps, seed)));
                p.exitHeadRows.put(profile, rows);
            }
            if (groups.contains("sweeps")) {
                List<SweepRow> rows = new ArrayList<>();
                for (String lr : SWEEP_VALUES) {
                    rows.add(new SweepRow("6", lr, p.sweep(profile, lr, "0", "0.7", sweepSteps, sweepSeed)));
                }
                for (String lq : SWEEP_VALUES) {
                    rows.add(new SweepRow("7", lq, p.sweep(profile, "0.2", lq, "0.7", sweepSteps, sweepSeed)));
                }
                for (String routing : List.of("OFF", "ON")) {
                    for (String pm : P_MAX_VALUES) {
                        rows.add(new SweepRow("8", routing + " " + pm,
                                p.sweep(profile, routing.equals("ON") ? "0.2" : "0", "0.05", pm, sweepSteps, sweepSeed)));
                    }
                }
                p.sweepRows.put(profile, rows);
            }
        }
        return p;
    }

    private String factorial(String profile, String variant, int steps, long seed) {
        String id = profile + "-" + variant;
        if (runs.stream().noneMatch(r -> r.id().equals(id))) {
            runs.add(new RunSpec(id, "factorial", profile, variant, Map.of(), steps, seed));
        }
        return id;
    }

    private String exitHead(String profile, String design, Map<String, String> sets, int steps, long seed) {
        String id = profile + "-bitskip-" + design;
        runs.add(new RunSpec(id, "exit-heads", profile, "bitskip", new java.util.TreeMap<>(sets), steps, seed));
        return id;
    }

    private String sweep(String profile, String lr, String lq, String pMax, int steps, long seed) {
        String id = profile + "-sweep-lr" + lr + "-lq" + lq + "-p" + pMax;
        if (runs.stream().noneMatch(r -> r.id().equals(id))) {
            Map<String, String> sets = new LinkedHashMap<>();
            sets.put("lambda_r", lr);
            sets.put("lambda_q", lq);
            sets.put("p_max", pMax);
            runs.add(new RunSpec(id, "sweep", profile, "ee-only", sets, steps, seed));
        }
        return id;
    }

    public List<RunSpec> runs() {
        return runs;
    }

    /** Sweep table rows per profile (empty when sweeps were not planned). */
    public Map<String, List<SweepRow>> sweepRows() {
        return sweepRows;
    }

    /** Exit-head study rows per profile (empty when the study was not planned). */
    public Map<String, List<ExitHeadRow>> exitHeadRows() {
        return exitHeadRows;
    }
}
