package bitskip.model.infer;

import java.util.Arrays;

/**
 * The draft head of self-speculative decoding: the rows of the LM head for a subset of the vocabulary (by
 * default the V_d most frequent tokens of the training text, chosen at export and stored in the deployable
 * file as their ids), in the head's own format. A draft scores only these tokens, so a draft costs V_d/V of
 * a head pass; verification still uses the full head, so greedy output stays exactly the full model's.
 */
public final class DraftHead {
    /** The vocabulary subset, ascending. */
    public final int[] ids;
    /** The head's rows for ids, in order. */
    public final LmHead head;

    DraftHead(int[] ids, LmHead full) {
        this.ids = ids.clone();
        this.head = full.rows(this.ids);
    }

    public int size() {
        return ids.length;
    }

    /**
     * The vd most frequent ids of tokens (ties: the lower id first), ascending; every id must lie in [0, V).
     * Fewer than vd distinct ids in the text is refused, since the rest would be an arbitrary choice.
     */
    public static int[] mostFrequent(int[] tokens, int V, int vd) {
        if (vd < 1 || vd >= V) {
            throw new IllegalArgumentException("draft vocabulary size must be in [1, " + (V - 1) + "] (below the vocabulary of "
                    + V + "), got " + vd);
        }
        long[] count = new long[V];
        for (int t : tokens) {
            if (t < 0 || t >= V) {
                throw new IllegalArgumentException("token id " + t + " is outside the vocabulary [0, " + V + ")");
            }
            count[t]++;
        }
        Integer[] order = new Integer[V];
        for (int i = 0; i < V; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> count[a] != count[b] ? Long.compare(count[b], count[a]) : Integer.compare(a, b));
        if (count[order[vd - 1]] == 0) {
            long distinct = Arrays.stream(count).filter(c -> c > 0).count();
            throw new IllegalArgumentException("the text has " + distinct + " distinct tokens, fewer than the " + vd
                    + " asked for the draft vocabulary");
        }
        int[] ids = new int[vd];
        for (int i = 0; i < vd; i++) {
            ids[i] = order[i];
        }
        Arrays.sort(ids);
        return ids;
    }

    /** The share of tokens whose id is in ids (ascending). */
    public static double coverage(int[] tokens, int[] ids) {
        long in = 0;
        for (int t : tokens) {
            in += Arrays.binarySearch(ids, t) >= 0 ? 1 : 0;
        }
        return tokens.length == 0 ? Double.NaN : (double) in / tokens.length;
    }
}
