package bitskip.model.ablation;

import java.util.List;
import java.util.Map;

/**
 * The paper's reported numbers (arXiv 2510.23766v2, 85M model on WikiText-2), typed in from its tables so
 * the report can show them beside this run's. Variant keys are this project's names.
 */
public final class PaperResults {
    private PaperResults() {}

    /** Table 2: best validation perplexity and the step at which training stopped (seed 7). */
    public record Best(double ppl, int steps) {}

    public static final Map<String, Best> TABLE2 = Map.of(
            "baseline", new Best(228.77, 1800),
            "h-only", new Best(185.46, 1800),
            "ee-only", new Best(252.37, 2100),
            "bitskip", new Best(216.06, 1800));

    /** Table 3: full-precision vs 1.58-bit perplexity, and the change the paper prints (percent). */
    public record FpVsTernary(double fpPpl, double ternaryPpl, double deltaPercent) {}

    public static final Map<String, FpVsTernary> TABLE3 = Map.of(
            "baseline", new FpVsTernary(228.76, 451.03, 97.2),
            "h-only", new FpVsTernary(185.45, 389.65, 110.1),
            "ee-only", new FpVsTernary(252.34, 478.38, 89.6),
            "bitskip", new FpVsTernary(216.06, 764.36, 253.8));

    /** Table 4: mean scale, sparsity (zero share), Hi-Sparse count, +1 share, −1 share (shares as fractions). */
    public record Weights(double meanScale, double sparsity, int hiSparse, double plus, double minus) {}

    public static final Map<String, Weights> TABLE4 = Map.of(
            "baseline", new Weights(0.0051, 0.304, 4, 0.340, 0.356),
            "h-only", new Weights(0.0151, 0.356, 0, 0.320, 0.324),
            "ee-only", new Weights(0.0036, 0.269, 0, 0.360, 0.371),
            "bitskip", new Weights(0.0122, 0.353, 0, 0.323, 0.324));

    /** Table 5: per-layer exit loss of BitSkip (H+EE), layers 0..11. */
    public static final double[] TABLE5_LOSS = {11.27, 11.37, 11.33, 11.25, 11.13, 10.97, 10.59, 10.15, 9.92, 9.68, 9.43, 5.38};
    /** Table 5: per-layer exit perplexity of BitSkip (H+EE), layers 0..11. */
    public static final double[] TABLE5_PPL = {78480, 86584, 82870, 76889, 68198, 58027, 39540, 25603, 20237, 15923, 12418, 216};

    /** One row of a sweep table: the swept setting and the best and final validation perplexity. */
    public record SweepRow(String setting, double best, double fin) {}

    /** Table 6: lambda_r sweep, non-Hadamard model, lambda_q = 0, 500 steps, seed 42. */
    public static final List<SweepRow> TABLE6 = List.of(
            new SweepRow("0", 287.34, 254.56), new SweepRow("0.01", 288.64, 254.27), new SweepRow("0.05", 289.35, 259.17),
            new SweepRow("0.1", 288.24, 257.29), new SweepRow("0.2", 283.48, 251.11));

    /** Table 7: lambda_q sweep, non-Hadamard model, lambda_r = 0.2, 500 steps. */
    public static final List<SweepRow> TABLE7 = List.of(
            new SweepRow("0", 289.35, 259.17), new SweepRow("0.01", 289.48, 255.01), new SweepRow("0.05", 284.24, 254.10),
            new SweepRow("0.1", 285.95, 254.29), new SweepRow("0.2", 291.57, 257.89));

    /** Table 8: routing OFF/ON × p_max, non-Hadamard model, 500 steps (setting "OFF 0.7" etc.). */
    public static final List<SweepRow> TABLE8 = List.of(
            new SweepRow("OFF 0.7", 284.39, 251.43), new SweepRow("OFF 0.5", 287.34, 254.56),
            new SweepRow("OFF 0.2", 293.30, 259.85), new SweepRow("ON 0.7", 286.06, 252.93),
            new SweepRow("ON 0.5", 285.50, 254.80), new SweepRow("ON 0.2", 290.34, 253.43));
}
