package bitskip.engine;

/**
 * The routing gate's activations: its input {@code h} (N, C); written by the forward, the LayerNorm output
 * {@code ln} (N, C) and statistics, the ReLU output {@code hidden} (N, H) and the exit probability
 * {@code p} (N).
 */
public record RouterActs(Tensor h, Tensor ln, NormStats lnStats, Tensor hidden, Tensor p) {
    public RouterActs withInput(Tensor input) {
        return new RouterActs(input, ln, lnStats, hidden, p);
    }
}
