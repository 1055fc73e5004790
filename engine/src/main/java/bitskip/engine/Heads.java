package bitskip.engine;

/** A (B, T, heads, HS) activation: B sequences of T tokens, each {@code heads} heads of HS channels. */
public record Heads(int B, int T, int heads, int HS) {
    public Heads {
        if (B <= 0 || T <= 0 || heads <= 0 || HS <= 0) {
            throw new IllegalArgumentException("dimensions must be positive: B " + B + ", T " + T + ", heads " + heads
                    + ", HS " + HS);
        }
        if (HS % 2 != 0) {
            throw new IllegalArgumentException("argument HS = " + HS + ": must be even (RoPE rotates pairs)");
        }
    }

    public long size() {
        return (long) B * T * heads * HS;
    }
}
