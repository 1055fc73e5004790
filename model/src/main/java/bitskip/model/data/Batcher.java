package bitskip.model.data;

import java.util.ArrayList;
import java.util.List;

/**
 * Batches of B blocks.
 *
 * <p>Training: the blocks are visited epoch by epoch, each epoch in its own seeded random order. The stream
 * of block ids is {@code perm(0), perm(1), ...} with {@code perm(e)} a shuffle of {@code 0..count-1}
 * determined by (seed, e) alone; step s takes positions {@code s*B .. s*B+B-1} of that stream (a batch may
 * straddle two epochs). So the batch of step s is a pure function of (seed, s): a run resumed at step s draws
 * exactly the batches the uninterrupted run would have drawn, with no sampler state to save.
 * The generator (SplitMix64 + Fisher–Yates with unbiased bounded draws) is written out here rather than taken
 * from the JDK so that the order can never change under a different Java version.
 *
 * <p>Validation: the blocks in order, B at a time; the last batch may have fewer rows.
 */
public final class Batcher {

    /**
     * One batch: rows × ctx token ids, row-major. {@code blocks[r]} is the block in row r.
     */
    public record Batch(int rows, int ctx, int[] inputs, int[] targets, int[] blocks) {}

    private final Blocks blocks;
    private final int batchSize;
    private final long seed;

    // The last two permutations: consecutive steps reuse them, and a batch straddles at most two epochs
    // unless B exceeds the number of blocks.
    private long cachedEpochA = -1;
    private int[] cachedPermA;
    private long cachedEpochB = -1;
    private int[] cachedPermB;

    public Batcher(Blocks blocks, int batchSize, long seed) {
        if (batchSize <= 0) {
            throw new IllegalArgumentException("batch size must be positive, got " + batchSize);
        }
        this.blocks = blocks;
        this.batchSize = batchSize;
        this.seed = seed;
    }

    public Blocks blocks() {
        return blocks;
    }

    public int batchSize() {
        return batchSize;
    }

    public long seed() {
        return seed;
    }

    /** Epochs completed before step s (fractional): {@code s*B / count}. */
    public double epoch(long step) {
        return (double) step * batchSize / blocks.count();
    }

    // ------------------------------------------------------------------ training

    /** The block ids of training step s (s >= 0). */
    public int[] trainBlocks(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("step must be >= 0, got " + step);
        }
        int n = blocks.count();
        int[] ids = new int[batchSize];
        long pos = Math.multiplyExact(step, (long) batchSize);
        for (int r = 0; r < batchSize; r++, pos++) {
            ids[r] = permutation(pos / n)[(int) (pos % n)];
        }
        return ids;
    }

    /** The batch of training step s, in new arrays. */
    public Batch trainBatch(long step) {
        int t = blocks.ctx();
        return trainBatch(step, new int[batchSize * t], new int[batchSize * t]);
    }

    /** The batch of training step s, written into inputs and targets (each at least B*ctx long). */
    public Batch trainBatch(long step, int[] inputs, int[] targets) {
        int[] ids = trainBlocks(step);
        fill(ids, inputs, targets);
        return new Batch(ids.length, blocks.ctx(), inputs, targets, ids);
    }

    /** The shuffled order of epoch e: a pure function of (seed, e). */
    synchronized int[] permutation(long epoch) {
        if (epoch == cachedEpochA) {
            return cachedPermA;
        }
        if (epoch == cachedEpochB) {
            return cachedPermB;
        }
        int n = blocks.count();
        int[] perm = new int[n];
        for (int i = 0; i < n; i++) {
            perm[i] = i;
        }
        SplitMix64 rng = new SplitMix64(SplitMix64.mix(seed) ^ SplitMix64.mix(epoch + 0x632BE59BD9B4E019L));
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        cachedEpochB = cachedEpochA;
        cachedPermB = cachedPermA;
        cachedEpochA = epoch;
        cachedPermA = perm;
        return perm;
    }

    // ------------------------------------------------------------------ validation

    /** Number of validation batches, at most limit when limit > 0 (limit <= 0: all). */
    public int evalBatchCount(int limit) {
        int all = (blocks.count() + batchSize - 1) / batchSize;
        return limit > 0 ? Math.min(limit, all) : all;
    }

    /** Validation batch i: blocks {@code i*B ..} in order; the last one may have fewer rows. */
    public Batch evalBatch(int i) {
        int all = evalBatchCount(0);
        if (i < 0 || i >= all) {
            throw new IndexOutOfBoundsException("validation batch " + i + " of " + blocks.source() + ", which has "
                    + all + " batches of " + batchSize);
        }
        int first = i * batchSize;
        int rows = Math.min(batchSize, blocks.count() - first);
        int[] ids = new int[rows];
        for (int r = 0; r < rows; r++) {
            ids[r] = first + r;
        }
        int[] inputs = new int[rows * blocks.ctx()];
        int[] targets = new int[rows * blocks.ctx()];
        fill(ids, inputs, targets);
        return new Batch(rows, blocks.ctx(), inputs, targets, ids);
    }

    /** The first evalBatchCount(limit) validation batches, in order. */
    public List<Batch> evalBatches(int limit) {
        int n = evalBatchCount(limit);
        List<Batch> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(evalBatch(i));
        }
        return out;
    }

    private void fill(int[] ids, int[] inputs, int[] targets) {
        long need = (long) ids.length * blocks.ctx();
        if (inputs.length < need || targets.length < need) {
            throw new IllegalArgumentException("inputs/targets have length " + inputs.length + "/" + targets.length
                    + ", a batch of " + ids.length + " x ctx " + blocks.ctx() + " needs " + need);
        }
        for (int r = 0; r < ids.length; r++) {
            blocks.copy(ids[r], inputs, targets, r);
        }
    }

    /** SplitMix64 (Steele, Lea, Flood 2014): small, fast, and fully specified here. */
    static final class SplitMix64 {
        private long state;

        SplitMix64(long seed) {
            this.state = seed;
        }

        static long mix(long z) {
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            return z ^ (z >>> 31);
        }

        long nextLong() {
            state += 0x9E3779B97F4A7C15L;
            return mix(state);
        }

        /** Uniform in [0, bound), without modulo bias (Lemire's multiply-and-reject). */
        int nextInt(int bound) {
            long m = (nextLong() >>> 32) * bound;
            long low = m & 0xFFFFFFFFL;
            if (low < bound) {
                long threshold = (0x1_0000_0000L - bound) % bound;
                while (low < threshold) {
                    m = (nextLong() >>> 32) * bound;
                    low = m & 0xFFFFFFFFL;
                }
            }
            return (int) (m >>> 32);
        }
    }
}
