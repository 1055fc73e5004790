package bitskip.engine;

/** What a LayerNorm forward saves per row for its backward: the mean and 1/std (N each). */
public record NormStats(Tensor mean, Tensor rstd) {}
