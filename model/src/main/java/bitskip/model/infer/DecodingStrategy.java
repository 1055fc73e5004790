package bitskip.model.infer;

/**
 * How the tokens after the prompt are produced. The session holds every processed position; {@code next}
 * is the last token chosen, not yet processed. A step returns at least one new token and at most budget.
 * Implementations: {@link Strategies}.
 */
public interface DecodingStrategy {
    String name();

    /** Layers the prompt goes through during prefill. */
    int prefillDepth(int layers);

    int[] step(Session s, int next, int budget, Sampler sampler, DecodeStats stats);
}
