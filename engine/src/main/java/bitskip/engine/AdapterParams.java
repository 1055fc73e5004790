package bitskip.engine;

/**
 * An early exit's residual adapter's parameters (kernel {@code ExitAdapter}), or their gradients: its
 * LayerNorm (C) and its matrix w (C, C).
 */
public record AdapterParams(Norm norm, Tensor w) {}
