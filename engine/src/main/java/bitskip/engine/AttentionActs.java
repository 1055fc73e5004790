package bitskip.engine;

/**
 * Attention's activations: q (B, T, NH, HS) and k, v (B, T, NKV, HS) after RoPE; written by the forward, the
 * probabilities before dropout {@code probs} (B, NH, T, T) and the output {@code out} (B, T, NH, HS).
 * {@code dropMask} (B, NH, T, T) is the dropout mask on the probabilities (0 or 1/(1−p)), or null.
 */
public record AttentionActs(Tensor q, Tensor k, Tensor v, Tensor probs, Tensor dropMask, Tensor out) {}
