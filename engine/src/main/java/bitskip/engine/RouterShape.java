package bitskip.engine;

/** The routing gate's sizes: C input channels, H hidden units (C/4 in the paper), its LayerNorm's eps. */
public record RouterShape(int C, int H, float eps) {
    public RouterShape {
        if (C <= 0 || H <= 0) {
            throw new IllegalArgumentException("dimensions must be positive: C " + C + ", H " + H);
        }
    }
}
