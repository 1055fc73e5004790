package bitskip.model.infer;

import bitskip.engine.cpu.Lanes;
import bitskip.engine.cpu.VectorMath;
import bitskip.model.data.Batcher;
import bitskip.model.data.Blocks;
import bitskip.model.eval.Perplexity;
import java.util.function.Consumer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Perplexity of a deployed model ({@code bitskip eval --model F.bitskip}): the same blocks, batches and both
 * conventions as {@link Perplexity#measure} on a checkpoint, computed by the inference path itself (packed
 * ternary projections, the file's head in float or int8), so what the file will generate is what is measured.
 * Each block is one session: the block's tokens go through the layers in batches, and the logits of every
 * position come from passes over the head of {@link #ROWS} positions at a time. With exits, the same session
 * is deepened one layer at a time ({@link Session#deepen}) and every layer's exit is scored.
 */
public final class DeployedPerplexity {
    private DeployedPerplexity() {}

    /** Positions per head pass (and per layer call). */
    static final int ROWS = 64;

    public static Perplexity measure(InferenceModel m, Blocks blocks, int B, int batches, boolean exits,
                                     Consumer<String> progress) {
        if (blocks.ctx() != m.ctx()) {
            throw new IllegalArgumentException("blocks of " + blocks.ctx() + " tokens for a model of context " + m.ctx());
        }
        int L = m.L, T = blocks.ctx(), V = m.V;
        Batcher batcher = new Batcher(blocks, B, 0L);
        int n = batcher.evalBatchCount(batches);
        Session s = m.newSession(ROWS);
        double sum = 0, batchMeans = 0;
        double[] exitSum = new double[L], exitBatchMeans = new double[L];
        double[] rowLoss = new double[ROWS];
        long tokens = 0;
        long t0 = System.nanoTime(), last = t0;
        for (int i = 0; i < n; i++) {
            Batcher.Batch b = batcher.evalBatch(i);
            double batchSum = 0;
            double[] batchExit = new double[L];
            for (int r = 0; r < b.rows(); r++) {
                int[] in = java.util.Arrays.copyOfRange(b.inputs(), r * T, (r + 1) * T);
                int[] tg = java.util.Arrays.copyOfRange(b.targets(), r * T, (r + 1) * T);
                s.crop(0);
                s.advance(in, exits ? 1 : L, null);
                for (int l = exits ? 0 : L - 1; l < L; l++) {
                    if (l > 0 && exits) {
                        s.deepen(l + 1);
                    }
                    double loss = 0;
                    for (int p = 0; p < T; p += ROWS) {
                        int cnt = Math.min(ROWS, T - p);
                        s.prepareLogits(p, cnt);
                        int p0 = p;
                        m.par.forRange(cnt, (long) cnt * V * 8, (from, to) -> {
                            for (int j = from; j < to; j++) {
                                rowLoss[j] = crossEntropy(s.blockLogits(), j * V, V, tg[p0 + j]);
                            }
                        });
                        for (int j = 0; j < cnt; j++) {
                            loss += rowLoss[j];
                        }
                    }
                    if (exits) {
                        batchExit[l] += loss;
                    }
                    if (l == L - 1) {
                        batchSum += loss;
                    }
                }
            }
            long bt = (long) b.rows() * T;
            sum += batchSum;
            batchMeans += batchSum / bt;
            for (int l = 0; l < L && exits; l++) {
                exitSum[l] += batchExit[l];
                exitBatchMeans[l] += batchExit[l] / bt;
            }
            tokens += bt;
            long now = System.nanoTime();
            if (progress != null && (now - last > 10e9 || i == n - 1)) {
                progress.accept(String.format(java.util.Locale.ROOT, "batch %d/%d: ppl so far %.3f (%.0f s)", i + 1, n,
                        Math.exp(sum / tokens), (now - t0) / 1e9));
                last = now;
            }
        }
        return Perplexity.ofSums(tokens, n, B, sum, batchMeans, exits ? exitSum : null, exits ? exitBatchMeans : null);
    }

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    /**
     * logsumexp(x[off, off + V)) − x[off + target], as the cpu backend's cross-entropy row computes it: exp in
     * float lanes (VectorMath.exp, exact IEEE operations), float partial sums over blocks of 64 vectors added
     * into a double.
     */
    static double crossEntropy(float[] x, int off, int V, int target) {
        int vb = S.loopBound(V), VL = S.length();
        FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i < vb; i += VL) {
            mx = mx.max(FloatVector.fromArray(S, x, off + i));
        }
        float max = mx.reduceLanes(VectorOperators.MAX);
        for (; i < V; i++) {
            max = Math.max(max, x[off + i]);
        }
        double sum = 0;
        i = 0;
        while (i < vb) {
            int end = Math.min(vb, i + 64 * VL);
            FloatVector acc = FloatVector.zero(S);
            for (; i < end; i += VL) {
                acc = acc.add(VectorMath.expNonPositive(FloatVector.fromArray(S, x, off + i).sub(max)));
            }
            sum += Lanes.sum(acc);
        }
        for (; i < V; i++) {
            sum += (float) Math.exp(x[off + i] - max);
        }
        return (max - (double) x[off + target]) + Math.log(sum);
    }
}
