package bitskip.model.train;

import bitskip.kernels.Dropout;
import bitskip.model.config.BitSkipConfig;

/**
 * Every random choice of a training run is a pure function of (seed, step, micro-batch): the batch, the
 * layer-skip masks and the dropout masks. A run resumed at step s therefore draws exactly what the
 * uninterrupted run drew, with no random-generator state to save.
 */
public final class Randomness {
    private Randomness() {}

    /** The seed of the dropout masks of one micro-batch. */
    public static long dropoutSeed(long seed, int step, int micro) {
        return mix(seed, 0x5EED_D70FL, step, micro);
    }

    /** skip[l][b] = 1 where layer l is skipped for sample b (spec Eq. 5; the last layer never). */
    public static int[][] skipMask(BitSkipConfig c, long seed, int step, int micro, int B) {
        int L = c.nLayers();
        int[][] skip = new int[L][B];
        if (c.pMax() == 0) {
            return skip;
        }
        long s = mix(seed, 0x5C1FL, step, micro);
        for (int l = 0; l < L; l++) {
            double p = c.skipProbability(l);
            for (int b = 0; b < B; b++) {
                skip[l][b] = Dropout.uniform(s, (long) l * B + b) < p ? 1 : 0;
            }
        }
        return skip;
    }

    static long mix(long seed, long stream, int step, int micro) {
        long z = seed * 0x9E3779B97F4A7C15L + stream;
        z = (z ^ (z >>> 31)) * 0xBF58476D1CE4E5B9L + step;
        z = (z ^ (z >>> 29)) * 0x94D049BB133111EBL + micro;
        return z ^ (z >>> 32);
    }
}
