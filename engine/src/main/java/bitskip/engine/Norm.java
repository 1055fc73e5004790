package bitskip.engine;

/**
 * The affine parameters of a LayerNorm, gain (C) and bias (C), or their gradients: both present, or both
 * null for a parameter-free LayerNorm ({@link #NONE}).
 */
public record Norm(Tensor weight, Tensor bias) {
    public static final Norm NONE = new Norm(null, null);

    public Norm {
        if ((weight == null) != (bias == null)) {
            throw new IllegalArgumentException("LayerNorm weight/bias: both present or both null, got "
                    + (weight == null ? "null/" + bias.name() : weight.name() + "/null"));
        }
    }

    public boolean affine() {
        return weight != null;
    }
}
