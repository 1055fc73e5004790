package bitskip.engine;

/**
 * The routing gate's parameters (kernel {@code Router}), or their gradients: its LayerNorm (C), w1 (H, C),
 * b1 (H), w2 (1, H), b2 (1).
 */
public record RouterParams(Norm norm, Tensor w1, Tensor b1, Tensor w2, Tensor b2) {}
