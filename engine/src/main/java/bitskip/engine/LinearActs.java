package bitskip.engine;

/**
 * The activations of one quantized projection's forward pass, which its backward pass reads: the input
 * {@code inp} (N, in) and, written by the forward, the output {@code out} (N, out), {@code preact} (N, out)
 * before relu2 (null without relu2), the quantized input {@code xHat} with its per-row scales
 * {@code actScale} (null with actBits 0), the quantized weight {@code wHat} (null with full-precision
 * weights). H-BitLinear also keeps the rotated input {@code z} (N, padded), its LayerNorm output
 * {@code lnOut} (N, in) and statistics {@code ln}; there xHat is ẑ, (N, padded).
 */
public record LinearActs(Tensor inp, Tensor out, Tensor preact, Tensor xHat, Tensor actScale, Tensor wHat,
                         Tensor z, Tensor lnOut, NormStats ln) {

    /** The same tensors for another input (the saved tensors belong to a layer; its input changes per call). */
    public LinearActs withInput(Tensor input) {
        return new LinearActs(input, out, preact, xHat, actScale, wHat, z, lnOut, ln);
    }

    /** H-BitLinear's BitLinear tail: its input is z. */
    LinearActs tail() {
        return new LinearActs(z, out, preact, xHat, actScale, wHat, null, null, null);
    }
}
