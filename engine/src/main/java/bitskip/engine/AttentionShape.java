package bitskip.engine;

/**
 * Causal grouped-query attention's sizes: B sequences of T tokens, NH query heads, NKV key/value heads (NKV
 * divides NH; query head h reads KV head h / (NH/NKV)), HS channels per head.
 */
public record AttentionShape(int B, int T, int NH, int NKV, int HS) {
    public AttentionShape {
        if (B <= 0 || T <= 0 || NH <= 0 || NKV <= 0 || HS <= 0) {
            throw new IllegalArgumentException("dimensions must be positive: B " + B + ", T " + T + ", NH " + NH
                    + ", NKV " + NKV + ", HS " + HS);
        }
        if (NH % NKV != 0) {
            throw new IllegalArgumentException("argument NKV = " + NKV + ": must divide NH = " + NH);
        }
    }

    public Heads queries() {
        return new Heads(B, T, NH, HS);
    }

    public Heads keys() {
        return new Heads(B, T, NKV, HS);
    }

    /** 1/sqrt(HS), rounded once to float, as the kernel computes it. */
    public float scale() {
        return (float) (1.0 / Math.sqrt(HS));
    }

    /** Floats of the work area attention needs: two (T, T) blocks. */
    public int workSize() {
        return 2 * T * T;
    }
}
