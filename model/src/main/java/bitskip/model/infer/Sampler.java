package bitskip.model.infer;

import java.util.Arrays;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Picks the next token from logits: greedy (argmax, the lowest id on ties), or sampled from the softmax at
 * a temperature, restricted to the top-k tokens and then to the smallest set whose probability reaches
 * top-p, with a seeded generator (same seed, same tokens).
 */
public final class Sampler {
    public final boolean greedy;
    public final float temperature;
    public final int topK;
    public final float topP;
    private final SplittableRandom rng;

    private Sampler(boolean greedy, float temperature, int topK, float topP, long seed) {
        if (!greedy && !(temperature > 0)) {
            throw new IllegalArgumentException("temperature must be > 0 (use --greedy for argmax), got " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top-k must be >= 0 (0 = all tokens), got " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        }
        this.greedy = greedy;
        this.temperature = temperature;
        this.topK = topK;
        this.topP = topP;
        this.rng = new SplittableRandom(seed);
    }

    public static Sampler greedy() {
        return new Sampler(true, 1.0f, 0, 1.0f, 0L);
    }

    public static Sampler sampling(float temperature, int topK, float topP, long seed) {
        return new Sampler(false, temperature, topK, topP, seed);
    }

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /**
     * The index of the largest of logits[0, V), the lowest one on ties: the maximum on vector lanes (exact in
     * any order), then the first index holding it. A NaN anywhere falls back to the scalar scan, which skips it
     * unless it is at index 0.
     */
    public static int argmax(float[] logits, int V) {
        return argmax(logits, 0, V);
    }

    /** {@link #argmax(float[], int)} of logits[off, off + V) (a row of a block of logits), as an index in [0, V). */
    public static int argmax(float[] logits, int off, int V) {
        int vb = S.loopBound(V), L = S.length();
        FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int i = 0; i < vb; i += L) {
            mx = mx.max(FloatVector.fromArray(S, logits, off + i));
        }
        float max = mx.reduceLanes(VectorOperators.MAX);
        for (int i = vb; i < V; i++) {
            max = Math.max(max, logits[off + i]);
        }
        for (int i = 0; i < vb; i += L) {
            VectorMask<Float> hit = FloatVector.fromArray(S, logits, off + i).eq(max);
            if (hit.anyTrue()) {
                return i + hit.firstTrue();
            }
        }
        for (int i = vb; i < V; i++) {
            if (logits[off + i] == max) {
                return i;
            }
        }
        int best = 0; // max is NaN
        for (int i = 1; i < V; i++) {
            if (logits[off + i] > logits[off + best]) {
                best = i;
            }
        }
        return best;
    }

    /** The next token. */
    public int next(float[] logits, int V) {
        return greedy ? argmax(logits, V) : draw(distribution(logits, V));
    }

    /** A uniform number in [0, 1) from this sampler's generator (speculative acceptance tests). */
    public double uniform() {
        return rng.nextDouble();
    }

    /**
     * The distribution sampling draws from: softmax(logits / T), zero outside the top-k and the top-p
     * nucleus, renormalized. Greedy: all the mass on the argmax.
     */
    public double[] distribution(float[] logits, int V) {
        double[] p = new double[V];
        if (greedy) {
            p[argmax(logits, V)] = 1.0;
            return p;
        }
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < V; i++) {
            max = Math.max(max, logits[i]);
        }
        double sum = 0;
        for (int i = 0; i < V; i++) {
            p[i] = Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        for (int i = 0; i < V; i++) {
            p[i] /= sum;
        }
        if (topK > 0 && topK < V || topP < 1) {
            Integer[] order = new Integer[V];
            for (int i = 0; i < V; i++) {
                order[i] = i;
            }
            final double[] pp = p;
            Arrays.sort(order, (a, b) -> pp[b] != pp[a] ? Double.compare(pp[b], pp[a]) : Integer.compare(a, b));
            int keep = topK > 0 ? Math.min(topK, V) : V;
            double cum = 0;
            int nucleus = 0;
            while (nucleus < keep) {
                cum += p[order[nucleus]];
                nucleus++;
                if (cum >= topP) {
                    break;
                }
            }
            double[] q = new double[V];
            double s = 0;
            for (int i = 0; i < nucleus; i++) {
                q[order[i]] = p[order[i]];
                s += p[order[i]];
            }
            for (int i = 0; i < V; i++) {
                q[i] /= s;
            }
            p = q;
        }
        return p;
    }

    /** A token drawn from a distribution. */
    public int draw(double[] p) {
        double u = rng.nextDouble();
        double cum = 0;
        int last = 0;
        for (int i = 0; i < p.length; i++) {
            if (p[i] > 0) {
                cum += p[i];
                last = i;
                if (u < cum) {
                    return i;
                }
            }
        }
        return last;
    }
}
