package bitskip.engine;

/**
 * The LM head (V, C), its gradient (null when not wanted), and the work area of the chunked cross-entropy:
 * {@code logits} of at least chunkRows·V floats, overwritten by each chunk's logits and then their gradient,
 * so the logits of all rows never exist at once.
 */
public record LmHead(Tensor weight, Tensor grad, int C, int V, Tensor logits, int chunkRows) {
    public LmHead {
        if (C <= 0 || V <= 0 || chunkRows <= 0) {
            throw new IllegalArgumentException("dimensions must be positive: C " + C + ", V " + V + ", chunkRows "
                    + chunkRows);
        }
    }
}
