package bitskip.model.ablation;

import bitskip.model.config.Presets;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code OUT/report.md}: the paper's Tables 2–8 in its layout, this ablation's numbers beside the paper's,
 * the figures (Figure 2: validation perplexity per variant; Figure 3: per-exit perplexity on a log scale;
 * training curves) and which of the paper's findings hold at this scale. Works on partial results: a
 * missing number is shown as "—".
 */
public final class AblationReport {
    private static final String NA = "—";
    private static final Map<String, String> LABEL = Map.of("baseline", "Baseline", "h-only", "H-only",
            "ee-only", "EE-only", "bitskip", "BitSkip (H+EE)");

    private final Path out;
    private final AblationPlan plan;
    private final List<String> profiles;
    private final Map<String, RunFolder> runs = new LinkedHashMap<>();

    public AblationReport(Path out, AblationPlan plan, List<String> profiles, Map<String, Path> runDirs) throws IOException {
        this.out = out;
        this.plan = plan;
        this.profiles = profiles;
        for (Map.Entry<String, Path> e : runDirs.entrySet()) {
            runs.put(e.getKey(), RunFolder.read(e.getValue()));
        }
    }

    private RunFolder run(String profile, String variant) {
        return runs.get(profile + "-" + variant);
    }

    /** Writes report.md and the PNG figures into OUT; header is Markdown put first (title, command, notes). */
    public Path write(String header) throws IOException {
        Files.createDirectories(out);
        StringBuilder s = new StringBuilder(header).append("\n");
        table2(s);
        table3(s);
        table4(s);
        table5(s);
        sweeps(s);
        exitHeads(s);
        figures(s);
        findings(s);
        Path f = out.resolve("report.md");
        Files.writeString(f, s.toString(), StandardCharsets.UTF_8);
        return f;
    }

    // ---- tables -----------------------------------------------------------------------------------

    private void table2(StringBuilder s) {
        s.append("## Table 2: composition ablation (best validation perplexity, step)\n\n");
        s.append("Ours: exp of the token-weighted mean validation cross-entropy, as logged during training; the step is "
                + "the one of the best checkpoint, then the last step trained. Paper: 85M model, 10k-step budget with early stopping.\n\n");
        s.append("| Configuration | Hadamard | Early exit | paper best PPL | paper steps |");
        for (String p : profiles) {
            s.append(" ours `").append(p).append("` best PPL | best step / last step |");
        }
        s.append("\n|---|:-:|:-:|---:|---:|");
        s.append("---:|---:|".repeat(profiles.size())).append('\n');
        for (String v : Presets.VARIANTS) {
            PaperResults.Best pb = PaperResults.TABLE2.get(v);
            s.append(String.format(Locale.ROOT, "| %s | %s | %s | %.2f | %d |", LABEL.get(v), v.equals("h-only") || v.equals("bitskip") ? "✓" : "",
                    v.startsWith("ee") || v.equals("bitskip") ? "✓" : "", pb.ppl(), pb.steps()));
            for (String p : profiles) {
                RunFolder r = run(p, v);
                double[] b = r == null ? null : r.best();
                s.append(b == null ? " " + NA + " | " + NA + " |"
                        : String.format(Locale.ROOT, " %s | %d / %d |", fmt(b[1]), (int) b[0], r.lastStep()));
            }
            s.append('\n');
        }
        s.append('\n');
    }

    private void table3(StringBuilder s) {
        s.append("## Table 3: latent (\"full precision\") vs deployed 1.58-bit perplexity\n\n");
        s.append("Ours: the best checkpoint evaluated by `bitskip eval` on the validation text (token-weighted). Latent = the "
                + "model exactly as trained (W1.58/A8 forward). Deployed = `packed` (alpha*Wq evaluated as is, profile `paper`) or "
                + "`requantized` (the authors' double ternarization, profile `reference`).\n\n");
        s.append("| Configuration | paper FP PPL | paper 1.58-bit PPL | paper Δ |");
        for (String p : profiles) {
            s.append(" `").append(p).append("` latent | `").append(p).append("` deployed | Δ |");
        }
        s.append("\n|---|---:|---:|---:|").append("---:|---:|---:|".repeat(profiles.size())).append('\n');
        for (String v : Presets.VARIANTS) {
            PaperResults.FpVsTernary t = PaperResults.TABLE3.get(v);
            s.append(String.format(Locale.ROOT, "| %s | %.2f | %.2f | %+.1f%% |", LABEL.get(v), t.fpPpl(), t.ternaryPpl(), t.deltaPercent()));
            for (String p : profiles) {
                RunFolder r = run(p, v);
                double lat = r == null ? Double.NaN : r.evalNumber("/latent/ppl_token_weighted");
                double dep = r == null ? Double.NaN : r.evalNumber("/deployed/ppl_token_weighted");
                String mode = r == null || r.eval() == null ? "" : " (" + r.eval().at("/deployed/deployment").asText() + ")";
                s.append(' ').append(fmt(lat)).append(" | ").append(fmt(dep)).append(Double.isNaN(dep) ? "" : mode).append(" | ")
                        .append(Double.isNaN(dep) ? NA : String.format(Locale.ROOT, "%+.1f%%", 100 * (dep / lat - 1))).append(" |");
            }
            s.append('\n');
        }
        s.append('\n');
    }

    private void table4(StringBuilder s) {
        s.append("## Table 4: weight distribution (unweighted means over the quantized matrices)\n\n");
        s.append("| Config | source | matrices | Mean scale | Sparsity | Hi-Sparse (>= 50% zeros) | +1 frac | -1 frac |\n");
        s.append("|---|---|---:|---:|---:|---:|---:|---:|\n");
        for (String v : Presets.VARIANTS) {
            PaperResults.Weights w = PaperResults.TABLE4.get(v);
            s.append(String.format(Locale.ROOT, "| %s | paper (85M) | 72 | %.4f | %.1f%% | %d | %.1f%% | %.1f%% |%n", LABEL.get(v),
                    w.meanScale(), 100 * w.sparsity(), w.hiSparse(), 100 * w.plus(), 100 * w.minus()));
            for (String p : profiles) {
                RunFolder r = run(p, v);
                if (r == null || r.eval() == null) {
                    s.append("| ").append(LABEL.get(v)).append(" | ours `").append(p).append("` |").append((" " + NA + " |").repeat(6)).append('\n');
                    continue;
                }
                s.append(String.format(Locale.ROOT, "| %s | ours `%s` | %d | %.4f | %.1f%% | %d | %.1f%% | %.1f%% |%n", LABEL.get(v), p,
                        (int) r.evalNumber("/weights/matrices"), r.evalNumber("/weights/mean_alpha"),
                        100 * r.evalNumber("/weights/mean_zero_frac"), (int) r.evalNumber("/weights/hi_sparse"),
                        100 * r.evalNumber("/weights/mean_plus_frac"), 100 * r.evalNumber("/weights/mean_minus_frac")));
            }
        }
        s.append('\n');
    }

    private void table5(StringBuilder s) {
        s.append("## Table 5: per-layer exit perplexity of BitSkip (H+EE)\n\n");
        s.append("Final LayerNorm and the shared LM head on each layer's output, no skipping. The paper's model has 12 layers; "
                + "ours has as many as its preset.\n\n");
        s.append("| Layer | paper loss | paper PPL |");
        for (String p : profiles) {
            s.append(" `").append(p).append("` loss | `").append(p).append("` PPL |");
        }
        s.append("\n|---:|---:|---:|").append("---:|---:|".repeat(profiles.size())).append('\n');
        int layers = PaperResults.TABLE5_PPL.length;
        for (String p : profiles) {
            RunFolder r = run(p, "bitskip");
            if (r != null && r.exitPpl() != null) {
                layers = Math.max(layers, r.exitPpl().length);
            }
        }
        for (int l = 0; l < layers; l++) {
            s.append("| ").append(l).append(" | ");
            s.append(l < PaperResults.TABLE5_PPL.length
                    ? String.format(Locale.ROOT, "%.2f | %s |", PaperResults.TABLE5_LOSS[l], fmt(PaperResults.TABLE5_PPL[l]))
                    : NA + " | " + NA + " |");
            for (String p : profiles) {
                RunFolder r = run(p, "bitskip");
                double[] ppl = r == null ? null : r.exitPpl(), loss = r == null ? null : r.exitLoss();
                s.append(ppl != null && l < ppl.length
                        ? String.format(Locale.ROOT, " %.2f | %s |", loss[l], fmt(ppl[l])) : " | |");
            }
            s.append('\n');
        }
        s.append('\n');
    }

    private void sweeps(StringBuilder s) {
        if (plan.sweepRows().isEmpty()) {
            s.append("## Tables 6–8: hyper-parameter sweeps\n\nNot run in this ablation (`--runs sweeps` or `--runs all`).\n\n");
            return;
        }
        Map<String, List<PaperResults.SweepRow>> paper = Map.of("6", PaperResults.TABLE6, "7", PaperResults.TABLE7, "8", PaperResults.TABLE8);
        Map<String, String> titles = Map.of(
                "6", "Table 6: routing loss weight (lambda_r) sweep; non-Hadamard early-exit model, lambda_q = 0",
                "7", "Table 7: quantization loss weight (lambda_q) sweep; non-Hadamard early-exit model, lambda_r = 0.2",
                "8", "Table 8: routing configuration (OFF: lambda_r = 0, ON: lambda_r = 0.2) x p_max; lambda_q = 0.05");
        for (String t : List.of("6", "7", "8")) {
            s.append("## ").append(titles.get(t)).append("\n\n| setting | paper best | paper final |");
            for (String p : profiles) {
                s.append(" `").append(p).append("` best | `").append(p).append("` final |");
            }
            s.append("\n|---|---:|---:|").append("---:|---:|".repeat(profiles.size())).append('\n');
            for (PaperResults.SweepRow pr : paper.get(t)) {
                s.append(String.format(Locale.ROOT, "| %s | %.2f | %.2f |", pr.setting(), pr.best(), pr.fin()));
                for (String p : profiles) {
                    RunFolder r = null;
                    for (AblationPlan.SweepRow row : plan.sweepRows().getOrDefault(p, List.of())) {
                        if (row.table().equals(t) && row.setting().equals(pr.setting())) {
                            r = runs.get(row.runId());
                        }
                    }
                    double[] b = r == null ? null : r.best(), f = r == null ? null : r.last();
                    s.append(' ').append(b == null ? NA : fmt(b[1])).append(" | ").append(f == null ? NA : fmt(f[1])).append(" |");
                }
                s.append('\n');
            }
            s.append('\n');
        }
    }

    /**
     * The exit-head study: per design, the final layer's best validation perplexity against h-only (does early exit
     * still hurt the last layer?), and each exit's perplexity from the evaluation (Figure 3 per design).
     */
    private void exitHeads(StringBuilder s) throws IOException {
        if (plan.exitHeadRows().isEmpty()) {
            return;
        }
        s.append("## Exit heads: bitskip with each exit-head design\n\n");
        s.append("Best validation perplexity of the final layer (as Table 2) and each exit's perplexity on the validation text "
                + "(as Table 5: final LayerNorm, then the exit's own head, no skipping; the last layer is the task head in every "
                + "design). \"vs h-only\" is the final layer's cost of training with early exit; \"mean early exit\" is the "
                + "geometric mean of the perplexities of the exits before the last.\n\n");
        for (Map.Entry<String, List<AblationPlan.ExitHeadRow>> e : plan.exitHeadRows().entrySet()) {
            String p = e.getKey();
            RunFolder hOnly = runs.get(p + "-h-only");
            double h = hOnly == null || hOnly.best() == null ? Double.NaN : hOnly.best()[1];
            int layers = 0;
            for (AblationPlan.ExitHeadRow row : e.getValue()) {
                RunFolder r = runs.get(row.runId());
                layers = Math.max(layers, r == null || r.exitPpl() == null ? 0 : r.exitPpl().length);
            }
            s.append("### profile `").append(p).append("`\n\n| exit head | run | final-layer best PPL | vs h-only | mean early exit |");
            for (int l = 0; l < layers; l++) {
                s.append(" exit ").append(l).append(" |");
            }
            s.append("\n|---|---|---:|---:|---:|").append("---:|".repeat(layers)).append('\n');
            Map<String, List<double[]>> curves = new LinkedHashMap<>();
            for (AblationPlan.ExitHeadRow row : e.getValue()) {
                RunFolder r = runs.get(row.runId());
                double b = r == null || r.best() == null ? Double.NaN : r.best()[1];
                double[] ex = r == null ? null : r.exitPpl();
                boolean isHOnly = row.runId().equals(p + "-h-only");
                s.append("| ").append(row.design()).append(" | `").append(row.runId()).append("` | ").append(fmt(b)).append(" | ")
                        .append(isHOnly || Double.isNaN(b * h) ? NA : String.format(Locale.ROOT, "%+.1f%%", 100 * (b / h - 1))).append(" | ")
                        .append(fmt(ex == null || isHOnly ? Double.NaN : meanEarlyExit(ex))).append(" |");
                for (int l = 0; l < layers; l++) {
                    s.append(' ').append(ex == null || l >= ex.length ? NA : fmt(ex[l])).append(" |");
                }
                s.append('\n');
                if (ex != null && !isHOnly) {
                    curves.put(row.design(), points(ex));
                }
            }
            String fig = "fig-exit-heads-" + p + ".png";
            Charts.lines(out.resolve(fig), "Per-layer exit perplexity by exit-head design (profile " + p + ")", "exit layer",
                    "validation perplexity", true, curves);
            s.append("\n![exit heads](").append(fig).append(")\n\n");
        }
    }

    /** Geometric mean of the perplexities of the exits before the last (exp of their mean loss). */
    static double meanEarlyExit(double[] exitPpl) {
        if (exitPpl.length < 2) {
            return Double.NaN;
        }
        double logs = 0;
        for (int l = 0; l + 1 < exitPpl.length; l++) {
            logs += Math.log(exitPpl[l]);
        }
        return Math.exp(logs / (exitPpl.length - 1));
    }

    // ---- figures ----------------------------------------------------------------------------------

    private void figures(StringBuilder s) throws IOException {
        List<String> cats = new ArrayList<>();
        for (String v : Presets.VARIANTS) {
            cats.add(LABEL.get(v));
        }
        Map<String, List<Double>> bars = new LinkedHashMap<>();
        for (String p : profiles) {
            List<Double> ys = new ArrayList<>();
            for (String v : Presets.VARIANTS) {
                RunFolder r = run(p, v);
                ys.add(r == null || r.best() == null ? 0.0 : r.best()[1]);
            }
            bars.put("ours, profile " + p, ys);
        }
        List<Double> paper = new ArrayList<>();
        for (String v : Presets.VARIANTS) {
            paper.add(PaperResults.TABLE2.get(v).ppl());
        }
        bars.put("paper (85M)", paper);
        Charts.bars(out.resolve("fig2-val-ppl.png"), "Best validation perplexity per variant (Figure 2)", cats, bars);

        Map<String, List<double[]>> exits = new LinkedHashMap<>();
        for (String p : profiles) {
            for (String v : Presets.VARIANTS) {
                RunFolder r = run(p, v);
                if (r != null && r.exitPpl() != null) {
                    exits.put(p + " " + v, points(r.exitPpl()));
                }
            }
        }
        exits.put("paper bitskip (85M, 12 layers)", points(PaperResults.TABLE5_PPL));
        Charts.lines(out.resolve("fig3-exit-ppl.png"), "Per-layer exit perplexity (Figure 3, log scale)", "exit layer",
                "validation perplexity", true, exits);

        Map<String, List<double[]>> val = new LinkedHashMap<>(), loss = new LinkedHashMap<>();
        for (Map.Entry<String, RunFolder> e : runs.entrySet()) {
            if (e.getKey().contains("-sweep-") || e.getKey().contains("-bitskip-")) {
                continue; // the curves show the factorial runs
            }
            val.put(e.getKey(), e.getValue().valPpl());
            List<double[]> tl = new ArrayList<>();
            for (double[] t : e.getValue().trainLoss()) {
                tl.add(new double[] {t[0], t[1]});
            }
            loss.put(e.getKey(), tl);
        }
        Charts.lines(out.resolve("fig-val-curves.png"), "Validation perplexity during training", "step",
                "validation perplexity (token-weighted)", true, val);
        Charts.lines(out.resolve("fig-train-loss.png"), "Training task loss (final-layer cross-entropy)", "step", "loss", false, loss);
        s.append("## Figures\n\n");
        s.append("![Figure 2](fig2-val-ppl.png)\n\n![Figure 3](fig3-exit-ppl.png)\n\n");
        s.append("![validation curves](fig-val-curves.png)\n\n![training loss](fig-train-loss.png)\n\n");
    }

    private static List<double[]> points(double[] ys) {
        List<double[]> p = new ArrayList<>();
        for (int i = 0; i < ys.length; i++) {
            p.add(new double[] {i, ys[i]});
        }
        return p;
    }

    // ---- findings ---------------------------------------------------------------------------------

    private void findings(StringBuilder s) {
        s.append("## Which of the paper's findings hold at this scale\n\n");
        s.append("Computed from the numbers above (best validation perplexity; lower is better).\n\n");
        for (String p : profiles) {
            s.append("### profile `").append(p).append("`\n\n");
            double b = best(p, "baseline"), h = best(p, "h-only"), e = best(p, "ee-only"), x = best(p, "bitskip");
            if (Double.isNaN(b) || Double.isNaN(h) || Double.isNaN(e) || Double.isNaN(x)) {
                s.append("- Not all four variants have finished; no conclusions.\n\n");
                continue;
            }
            // a difference counts when it exceeds 1%: below that it is noise at any scale these runs reach
            int hadamard1 = sign(b, h), hadamard2 = sign(e, x);
            s.append(String.format(Locale.ROOT, "- **Hadamard helps** (paper: h-only %.2f < baseline %.2f, bitskip %.2f < ee-only %.2f): "
                    + "%s here (h-only %s vs baseline %s: %+.1f%%; bitskip %s vs ee-only %s: %+.1f%%).%n", 185.46, 228.77, 216.06, 252.37,
                    verdict(hadamard1, hadamard2), fmt(h), fmt(b), 100 * (h / b - 1), fmt(x), fmt(e), 100 * (x / e - 1)));
            int ee1 = sign(e, b), ee2 = sign(x, h);
            s.append(String.format(Locale.ROOT, "- **Early exit hurts the final layer** (paper: ee-only worst, bitskip 17%% behind h-only): "
                    + "%s here (ee-only %s vs baseline %s: %+.1f%%; bitskip %s vs h-only %s: %+.1f%%).%n",
                    verdict(ee1, ee2), fmt(e), fmt(b), 100 * (e / b - 1), fmt(x), fmt(h), 100 * (x / h - 1)));
            RunFolder bs = run(p, "bitskip");
            double[] ex = bs == null ? null : bs.exitPpl();
            if (ex != null && ex.length >= 2) {
                int L = ex.length;
                double lastJump = ex[L - 2] / ex[L - 1];
                double maxOther = 1;
                for (int l = 0; l + 2 < L; l++) {
                    maxOther = Math.max(maxOther, ex[l] / ex[l + 1]);
                }
                boolean cliff = lastJump >= 10 && lastJump > 3 * maxOther;
                s.append(String.format(Locale.ROOT, "- **Per-layer perplexity cliff** (paper: layer 10 → 11 drops 12,418 → 216, x57.5, "
                        + "while the earlier layers improve by at most x1.5 per layer): %s here (layer %d → %d: %s → %s, x%.1f; "
                        + "largest earlier drop x%.2f).%n", cliff ? "holds" : "does not hold", L - 2, L - 1, fmt(ex[L - 2]), fmt(ex[L - 1]),
                        lastJump, maxOther));
            }
            RunFolder bb = run(p, "baseline");
            if (bb != null && bb.eval() != null && bb.eval().has("deployed")) {
                String mode = bb.eval().at("/deployed/deployment").asText();
                double sum = 0;
                int n = 0;
                for (String v : Presets.VARIANTS) {
                    RunFolder r = run(p, v);
                    if (r != null && r.eval() != null && r.eval().has("deployed")) {
                        sum += 100 * (r.evalNumber("/deployed/ppl_token_weighted") / r.evalNumber("/latent/ppl_token_weighted") - 1);
                        n++;
                    }
                }
                s.append(String.format(Locale.ROOT, "- **1.58-bit degradation** (paper: +90%% to +254%%): mean change %+.1f%% over %d variants "
                        + "with the `%s` deployed model. %s%n", sum / n, n, mode, mode.equals("packed")
                        ? "The packed ternary model computes exactly what training computed, so there is no degradation to find: the "
                        + "paper's figures are not a property of ternarization."
                        : "This is the `reference` switch \"1.58-bit evaluation = re-quantized alpha*Wq\": the second ternarization keeps "
                        + "the codes but scales each matrix by (1 - sparsity), i.e. by about " + String.format(Locale.ROOT, "%.0f%%",
                        100 * (1 - bb.evalNumber("/weights/mean_zero_frac"))) + " here; that shrink, not ternarization, is what the paper reports as degradation. What it costs depends on how much "
                        + "the blocks contribute to the output: in a barely trained model, next to nothing."));
            }
            collapsed(s, p);
            s.append('\n');
        }
    }

    /**
     * Flags variants whose quantized weights collapsed to zero (alpha at or near the quantizer's 1e-6 clamp):
     * their blocks add next to nothing, so the comparisons above that involve them measure the collapse, not
     * the Hadamard transform or early exit. Found in practice: under {@code paper} the quantization loss
     * (sum of squared errors) pulls every weight toward alpha*Wq, whose alpha shrinks with the weights, and in
     * the no-Hadamard variants that pull won against the task gradient.
     */
    private void collapsed(StringBuilder s, String profile) {
        List<String> dead = new ArrayList<>();
        for (String v : Presets.VARIANTS) {
            RunFolder r = run(profile, v);
            if (r == null || r.eval() == null) {
                continue;
            }
            int n = 0, k = 0;
            Set<String> kinds = new TreeSet<>(); // "attn.q_proj" for "layers.3.attn.q_proj.weight"
            for (JsonNode m : r.eval().at("/weights/per_matrix")) {
                n++;
                if (m.path("alpha").asDouble() <= COLLAPSED_ALPHA) {
                    k++;
                    kinds.add(m.path("name").asText().replaceFirst("^layers\\.\\d+\\.", "").replaceFirst("\\.weight$", ""));
                }
            }
            if (k > 0) {
                dead.add(String.format(Locale.ROOT, "%s (%d of %d matrices: %s)", v, k, n, String.join(", ", kinds)));
            }
        }
        if (!dead.isEmpty()) {
            s.append(String.format(Locale.ROOT, "- **Collapsed weights**: %s: alpha = mean|W| is at most %.0e (the quantizer clamps "
                    + "it at 1e-6), so those projections output next to nothing (where all of a model's have, it is close to "
                    + "embedding + head; where q and k have, its attention is a uniform average). Comparisons above that involve "
                    + "these variants measure the collapse; `quant_loss` in their metrics.jsonl shows when it happened.%n",
                    String.join("; ", dead), COLLAPSED_ALPHA));
        }
    }

    /** alpha at or below this counts as collapsed: ten times the quantizer's clamp. */
    static final double COLLAPSED_ALPHA = 1e-5;

    /** +1 when worse is more than 1% above better, -1 when more than 1% below, 0 within 1%. */
    private static int sign(double worse, double better) {
        double r = worse / better - 1;
        return r > 0.01 ? 1 : r < -0.01 ? -1 : 0;
    }

    private static String verdict(int a, int b) {
        if (a > 0 && b > 0) {
            return "holds";
        }
        if (a < 0 && b < 0) {
            return "does not hold (reversed)";
        }
        if (a == 0 && b == 0) {
            return "inconclusive (both differences within 1%)";
        }
        return a > 0 || b > 0 ? "holds in one of the two pairs only" : "does not hold";
    }

    private double best(String p, String v) {
        RunFolder r = run(p, v);
        return r == null || r.best() == null ? Double.NaN : r.best()[1];
    }

    static String fmt(double x) {
        if (Double.isNaN(x)) {
            return NA;
        }
        return x >= 1e4 ? String.format(Locale.ROOT, "%,.0f", x) : String.format(Locale.ROOT, "%.2f", x);
    }
}
