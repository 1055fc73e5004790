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
 */
public final class AblationPlan {
    public static final List<String> SWEEP_VALUES = List.of("0", "0.01", "0.05", "0.1", "0.2");
    public static final List<String> P_MAX_VALUES = List.of("0.7", "0.5", "0.2");

    /** A table row of a sweep: its label and the run that fills it. */
    public record SweepRow(String table, String setting, String runId) {}

    private final List<RunSpec> runs = new ArrayList<>();
    private final Map<String, List<SweepRow>> sweepRows = new LinkedHashMap<>();

    private AblationPlan() {}

    /**
     * @param what factorial, sweeps or all
     */
    public static AblationPlan build(List<String> profiles, String what, int steps, long seed, int sweepSteps,
                                     long sweepSeed) {
        if (!List.of("factorial", "sweeps", "all").contains(what)) {
            throw new IllegalArgumentException("--runs must be factorial, sweeps or all, got '" + what + "'");
        }
        AblationPlan p = new AblationPlan();
        for (String profile : profiles) {
            if (!Presets.PROFILES.contains(profile)) {
                throw new IllegalArgumentException("unknown profile '" + profile + "'; known: " + String.join(", ", Presets.PROFILES));
            }
            if (!what.equals("sweeps")) {
                for (String v : Presets.VARIANTS) {
                    p.runs.add(new RunSpec(profile + "-" + v, "factorial", profile, v, Map.of(), steps, seed));
                }
            }
            if (!what.equals("factorial")) {
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
}
