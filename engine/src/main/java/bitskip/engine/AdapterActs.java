package bitskip.engine;

/**
 * An early exit's residual adapter's activations: its input {@code h} (N, C); written by the forward, the
 * LayerNorm output {@code ln} (N, C) and statistics, and the output {@code out} (N, C), which is not h.
 */
public record AdapterActs(Tensor h, Tensor ln, NormStats lnStats, Tensor out) {}
