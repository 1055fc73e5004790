package bitskip.model.train;

import bitskip.kernels.Dropout;
import bitskip.model.config.BitSkipConfig;

/**
 * Every random choice of a training run is a pure function of (seed, step, micro-batch) and, within a
 * micro-batch, of the sample's index in it: the batch, the layer-skip masks and the dropout masks. Keyed by
 * the sample's global index, they are the same whether one process or N data-parallel workers train it. A run resumed at step s therefore draws exactly what the
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
        return skipMask(c, seed, step, micro, B, 0, B);
    }

    /**
     * The rows [first, first + count) of the skip mask of a micro-batch of B samples: skip[l][b] is the draw
     * of global sample first + b, so a data-parallel worker holding those samples skips exactly the layers
     * one process training the whole batch skips for them.
     */
    public static int[][] skipMask(BitSkipConfig c, long seed, int step, int micro, int B, int first, int count) {
        if (first < 0 || count < 0 || first + count > B) {
            throw new IllegalArgumentException("samples [" + first + ", " + (first + count) + ") are not in a batch of " + B);
        }
        int L = c.nLayers();
        int[][] skip = new int[L][count];
        if (c.pMax() == 0) {
            return skip;
        }
        long s = mix(seed, 0x5C1FL, step, micro);
        for (int l = 0; l < L; l++) {
            double p = c.skipProbability(l);
            for (int b = 0; b < count; b++) {
                skip[l][b] = Dropout.uniform(s, (long) l * B + first + b) < p ? 1 : 0;
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
