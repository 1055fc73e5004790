package bitskip.kernels;

/**
 * Inverted dropout with a counter-based generator: element i of a mask is a pure function of
 * (seed, offset + i), so any backend (a GPU included) reproduces the same mask bit for bit without shared
 * RNG state, and a mask can be generated in pieces. The mask holds 0 for a dropped element and 1/(1−p)
 * for a kept one, so the expected value of every element is unchanged. forward/backward multiply by it.
 */
public final class Dropout {
    private Dropout() {}

    /** splitmix64's counter step (the 64-bit golden ratio) and its finalizer's two multipliers, for vector twins. */
    public static final long GAMMA = 0x9E3779B97F4A7C15L, MIX1 = 0xBF58476D1CE4E5B9L, MIX2 = 0x94D049BB133111EBL;

    /**
     * A uniform number in [0, 1): the splitmix64 finalizer of seed + counter·γ (γ the 64-bit golden ratio,
     * as in {@code java.util.SplittableRandom}), keeping the top 24 bits. 24 bits are exact in a float, so the
     * float kernel and its double twin return the same value.
     */
    public static float uniform(long seed, long counter) {
        long z = seed + counter * GAMMA;
        z = (z ^ (z >>> 30)) * MIX1;
        z = (z ^ (z >>> 27)) * MIX2;
        z = z ^ (z >>> 31);
        return (float) (z >>> 40) / 16777216.0f;
    }

    /**
     * Overwrites mask (n): mask[i] = 0 if uniform(seed, offset + i) &lt; p, else 1/(1−p). p must be in
     * [0, 1); p = 0 gives all ones.
     */
    public static void mask(float[] mask, int n, float p, long seed, long offset) {
        Check.positive("n", n);
        Check.len(mask, "mask", n, "n");
        // Written so that NaN fails too.
        Check.arg(p >= 0.0f && p < 1.0f, "p", p, "dropout probability must be in [0, 1)");
        float keep = 1.0f / (1.0f - p);
        for (int i = 0; i < n; i++) {
            mask[i] = uniform(seed, offset + i) < p ? 0.0f : keep;
        }
    }

    /** Overwrites out = inp · mask, elementwise. */
    public static void forward(float[] out, float[] inp, float[] mask, int n) {
        check(out, "out", inp, "inp", mask, n);
        for (int i = 0; i < n; i++) {
            out[i] = inp[i] * mask[i];
        }
    }

    /** Accumulates dinp += dout · mask. */
    public static void backward(float[] dinp, float[] dout, float[] mask, int n) {
        check(dinp, "dinp", dout, "dout", mask, n);
        for (int i = 0; i < n; i++) {
            dinp[i] += dout[i] * mask[i];
        }
    }

    private static void check(float[] x, String xName, float[] y, String yName, float[] mask, int n) {
        Check.positive("n", n);
        Check.len(x, xName, n, "n");
        Check.len(y, yName, n, "n");
        Check.len(mask, "mask", n, "n");
    }
}
