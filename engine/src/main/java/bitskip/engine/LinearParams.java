package bitskip.engine;

/**
 * The parameters of a quantized projection, or their gradients: the weight ((out, in), or (out, padded) in
 * the rotated basis of H-BitLinear) and H-BitLinear's own LayerNorm ({@link Norm#NONE} for BitLinear). A
 * gradient that is not wanted is null.
 */
public record LinearParams(Tensor weight, Norm norm) {
    public static LinearParams bitLinear(Tensor weight) {
        return new LinearParams(weight, Norm.NONE);
    }
}
