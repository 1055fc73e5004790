package bitskip.spark;

import bitskip.model.train.GradientExchange;
import java.io.Serializable;
import java.util.Map;
import java.util.TreeMap;

/**
 * The sum of N workers' results in one fixed order, whatever order they arrive in. Spark's treeAggregate
 * merges partial results as tasks finish; float addition is not associative, so a sum in arrival order would
 * change bits run to run. Here the N leaves are the leaves of a fixed binary tree: two partial sums are added
 * (left + right) only when they are the two children of one node, and a node whose right subtree holds no
 * worker is its left child unchanged. Any merge order gives the same bits.
 */
final class TreeSum implements Serializable {
    private static final long serialVersionUID = 1L;

    private final int n;
    /** Complete subtrees not yet paired: key (level << 32 | index) covers leaves [index·2^level, (index+1)·2^level). */
    private final TreeMap<Long, GradientExchange.Sum> nodes = new TreeMap<>();
    /**
     * The slowest worker's seconds: to get the broadcast weights, to compute, and both (for the communication
     * estimate; not part of the sum).
     */
    private final double[] slowest = new double[3];

    private TreeSum(int n) {
        this.n = n;
    }

    static TreeSum empty(int n) {
        return new TreeSum(n);
    }

    static TreeSum leaf(int n, int worker, GradientExchange.Sum s, double fetchSeconds, double computeSeconds) {
        if (worker < 0 || worker >= n) {
            throw new IllegalArgumentException("worker " + worker + " of " + n);
        }
        TreeSum t = new TreeSum(n);
        t.insert(0, worker, s);
        t.slowest[0] = fetchSeconds;
        t.slowest[1] = computeSeconds;
        t.slowest[2] = fetchSeconds + computeSeconds;
        return t;
    }

    /** Adds other's parts into this one (either may be reused afterwards only through the result). */
    TreeSum merge(TreeSum other) {
        if (other.n != n) {
            throw new IllegalArgumentException("sums of " + n + " and " + other.n + " workers");
        }
        for (Map.Entry<Long, GradientExchange.Sum> e : other.nodes.entrySet()) {
            insert((int) (e.getKey() >>> 32), (int) (long) e.getKey(), e.getValue());
        }
        for (int i = 0; i < slowest.length; i++) {
            slowest[i] = Math.max(slowest[i], other.slowest[i]);
        }
        return this;
    }

    private void insert(int level, int index, GradientExchange.Sum s) {
        while (true) {
            if (1L << level >= n) {
                nodes.put(key(level, index), s);
                return;
            }
            int sibling = index ^ 1;
            if (((long) sibling << level) >= n) { // the sibling subtree holds no worker
                index >>= 1;
                level++;
                continue;
            }
            GradientExchange.Sum other = nodes.remove(key(level, sibling));
            if (other == null) {
                nodes.put(key(level, index), s);
                return;
            }
            s = (index & 1) == 0 ? add(s, other) : add(other, s);
            index >>= 1;
            level++;
        }
    }

    /** left + right, into left's arrays. */
    private static GradientExchange.Sum add(GradientExchange.Sum left, GradientExchange.Sum right) {
        float[] g = left.grads(), h = right.grads();
        for (int i = 0; i < g.length; i++) {
            g[i] += h[i];
        }
        double[] a = left.losses(), b = right.losses();
        for (int i = 0; i < a.length; i++) {
            a[i] += b[i];
        }
        return left;
    }

    private static long key(int level, int index) {
        return (long) level << 32 | (index & 0xFFFFFFFFL);
    }

    /** The sum of all N workers; fails if some are missing. */
    GradientExchange.Sum result() {
        int top = 0;
        while (1L << top < n) {
            top++;
        }
        GradientExchange.Sum s = nodes.get(key(top, 0));
        if (s == null || nodes.size() != 1) {
            throw new IllegalStateException("the sum of " + n + " workers is missing parts (has " + nodes.keySet() + ")");
        }
        return s;
    }

    /** {fetch, compute, fetch + compute} of the slowest worker at each. */
    double[] slowest() {
        return slowest.clone();
    }
}
