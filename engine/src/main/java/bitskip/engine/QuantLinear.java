package bitskip.engine;

/**
 * The shape and switches of one quantized projection (kernels {@code BitLinear} and {@code HBitLinear}):
 * {@code in} input channels, {@code out} output channels, and for H-BitLinear the padded width
 * {@code padded} (the next power of two of {@code in}, the width of the weight in the rotated basis) and its
 * LayerNorm's {@code eps}. Switches: {@code actBits} 0 (no activation quantization) or 2..8, {@code ternary}
 * weights (else full precision), {@code relu2} on the output.
 */
public record QuantLinear(int in, int padded, int out, float eps, int actBits, boolean ternary, boolean relu2) {
    public QuantLinear {
        if (in <= 0 || out <= 0) {
            throw new IllegalArgumentException("dimensions must be positive: in " + in + ", out " + out);
        }
        if (padded < in || (padded != in && (padded & (padded - 1)) != 0)) {
            throw new IllegalArgumentException("argument padded = " + padded + ": must be in itself or a power of two >= in = " + in);
        }
        if (!(actBits == 0 || (actBits >= 2 && actBits <= 8))) {
            throw new IllegalArgumentException("argument actBits = " + actBits
                    + ": must be 0 (no activation quantization) or in [2, 8]");
        }
    }

    /** A BitLinear: the weight is (out, in). */
    public static QuantLinear bitLinear(int in, int out, int actBits, boolean ternary, boolean relu2) {
        return new QuantLinear(in, in, out, 0.0f, actBits, ternary, relu2);
    }

    /** An H-BitLinear: the weight is (out, nextPow2(in)), in the rotated basis. */
    public static QuantLinear hadamard(int in, int out, float eps, int actBits, boolean ternary, boolean relu2) {
        int p = 1;
        while (p < in) {
            p *= 2;
        }
        if (!(eps > 0.0f)) {
            throw new IllegalArgumentException("argument eps = " + eps + ": must be positive");
        }
        return new QuantLinear(in, p, out, eps, actBits, ternary, relu2);
    }

    /** The BitLinear tail of an H-BitLinear: from the padded, rotated activations to the output. */
    public QuantLinear tail() {
        return new QuantLinear(padded, padded, out, eps, actBits, ternary, relu2);
    }
}
