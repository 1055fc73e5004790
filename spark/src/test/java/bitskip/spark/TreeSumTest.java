package bitskip.spark;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.train.GradientExchange;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The fixed-order sum of the workers' results: the same bits whatever order they arrive and merge in. */
class TreeSumTest {

    static GradientExchange.Sum vector(Random r, int len) {
        float[] g = new float[len];
        for (int i = 0; i < len; i++) {
            g[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(8) - 4)); // magnitudes that make the order matter
        }
        return new GradientExchange.Sum(g, new double[] {r.nextDouble(), r.nextGaussian() * 1e-9});
    }

    static GradientExchange.Sum copy(GradientExchange.Sum s) {
        return new GradientExchange.Sum(s.grads().clone(), s.losses().clone());
    }

    @Test
    void anyMergeOrderGivesTheSameBits() {
        Random r = new Random(11);
        for (int n = 1; n <= 9; n++) {
            List<GradientExchange.Sum> leaves = new ArrayList<>();
            for (int w = 0; w < n; w++) {
                leaves.add(vector(r, 257));
            }
            GradientExchange.Sum reference = null;
            boolean orderMatters = false;
            for (int trial = 0; trial < 30; trial++) {
                // leaves merged into a few partial sums in random order, then the partials merged in random order
                List<Integer> order = new ArrayList<>();
                for (int w = 0; w < n; w++) {
                    order.add(w);
                }
                Collections.shuffle(order, r);
                List<TreeSum> partials = new ArrayList<>();
                for (int w : order) {
                    TreeSum leaf = TreeSum.leaf(n, w, copy(leaves.get(w)), 0.01 * w, 0.1 * w);
                    if (partials.isEmpty() || r.nextBoolean()) {
                        partials.add(TreeSum.empty(n).merge(leaf));
                    } else {
                        partials.get(r.nextInt(partials.size())).merge(leaf);
                    }
                }
                Collections.shuffle(partials, r);
                TreeSum total = TreeSum.empty(n);
                for (TreeSum p : partials) {
                    total.merge(p);
                }
                GradientExchange.Sum s = total.result();
                assertArrayEquals(new double[] {0.01 * (n - 1), 0.1 * (n - 1), 0.11 * (n - 1)}, total.slowest(), 1e-12);
                if (reference == null) {
                    reference = s;
                } else {
                    assertArrayEquals(reference.grads(), s.grads(), 0.0f, n + " workers, trial " + trial);
                    assertArrayEquals(reference.losses(), s.losses(), 0.0, n + " workers, trial " + trial);
                }
            }
            // the test means something: summed in arrival order, these vectors do give other bits
            float[] forward = new float[257], backward = new float[257];
            for (int w = 0; w < n; w++) {
                for (int i = 0; i < 257; i++) {
                    forward[i] += leaves.get(w).grads()[i];
                    backward[i] += leaves.get(n - 1 - w).grads()[i];
                }
            }
            orderMatters = !java.util.Arrays.equals(forward, backward);
            assertTrue(n < 3 || orderMatters, n + " workers: the order of the sum should matter for these vectors");
        }
    }

    @Test
    void threeWorkersAreSummedAsTheTreeSays() {
        Random r = new Random(5);
        GradientExchange.Sum a = vector(r, 64), b = vector(r, 64), c = vector(r, 64);
        TreeSum t = TreeSum.empty(3).merge(TreeSum.leaf(3, 2, copy(c), 0, 0)).merge(TreeSum.leaf(3, 0, copy(a), 0, 0))
                .merge(TreeSum.leaf(3, 1, copy(b), 0, 0));
        float[] got = t.result().grads();
        for (int i = 0; i < 64; i++) {
            assertEquals((a.grads()[i] + b.grads()[i]) + c.grads()[i], got[i], 0.0f, "element " + i);
        }
    }

    @Test
    void aMissingWorkerIsAnError() {
        TreeSum t = TreeSum.empty(3).merge(TreeSum.leaf(3, 0, vector(new Random(1), 4), 0, 0));
        IllegalStateException e = assertThrows(IllegalStateException.class, t::result);
        assertTrue(e.getMessage().contains("missing parts"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TreeSum.leaf(3, 3, vector(new Random(1), 4), 0, 0));
    }

    @Test
    void mastersSayHowManyTasksShareAMachine() {
        assertEquals(1, Masters.tasksPerMachine("local", 8));
        assertEquals(3, Masters.tasksPerMachine("local[3]", 8));
        assertEquals(8, Masters.tasksPerMachine("local[*]", 8));
        assertEquals(2, Masters.tasksPerMachine("local[2,4]", 8));
        assertEquals(4, Masters.tasksPerMachine("local-cluster[2,2,1024]", 8));
        assertEquals(0, Masters.tasksPerMachine("spark://head:7077", 8));
        assertEquals(0, Masters.tasksPerMachine("k8s://https://api:443", 8));
        assertTrue(Masters.inThisJvm("local[2]"));
        assertFalse(Masters.inThisJvm("local-cluster[2,1,1024]"));
        assertTrue(Masters.onThisMachine("local-cluster[2,1,1024]"));
        assertFalse(Masters.onThisMachine("spark://127.0.0.1:7077"));
    }
}
