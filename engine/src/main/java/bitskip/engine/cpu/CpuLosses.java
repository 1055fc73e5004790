package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;
import static bitskip.engine.cpu.Vec.S;
import static bitskip.engine.cpu.Vec.VL;
import static bitskip.engine.cpu.Vec.ld;
import static bitskip.engine.cpu.Vec.st;

import bitskip.engine.Tensor;
import bitskip.kernels.Check;
import java.nio.ByteBuffer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The fused softmax cross-entropy rows of the LM-head loss, one row per chunk of the pool, the gradient
 * written in place over the logits. Vector path: exp on float lanes ({@link VectorMath}), float partial sums
 * over blocks of 64 vectors added into a double; scalar path: the reference's double exp and sum.
 */
final class CpuLosses {
    private final CpuContext cx;

    CpuLosses(CpuContext cx) {
        this.cx = cx;
    }

    void crossEntropy(Tensor logits, int[] targets, int R, int V, float gradScale, boolean grad, double[] rowLoss) {
        Check.positive("R", R, "V", V);
        CpuTensor lg = of(logits).need((long) R * V, "R*V");
        Check.len(targets, "targets", R, "R");
        Check.arg(rowLoss != null && rowLoss.length >= R, "rowLoss", rowLoss == null ? "null" : rowLoss.length,
                "needs R = " + R + " entries");
        for (int r = 0; r < R; r++) {
            if (targets[r] < -1 || targets[r] >= V) {
                Check.arg(false, "targets[" + r + "]", targets[r], "must be -1 (ignored) or in [0, V) with V = " + V);
            }
        }
        cx.pool.forRange(R, 1, (part, lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                rowLoss[r] = row(lg.bb, r * V, V, targets[r], grad, gradScale);
            }
        });
    }

    /**
     * One row of CrossEntropy.forwardBackward, in place: returns logsumexp − x[target] (0 for an ignored row)
     * and, when grad, overwrites the row with (softmax − onehot)·gradScale (0 for an ignored row).
     */
    private double row(ByteBuffer row, int off, int V, int target, boolean grad, float gradScale) {
        if (target < 0) {
            if (grad) {
                for (int i = 0; i < V; i++) {
                    row.putFloat((off + i) << 2, 0.0f);
                }
            }
            return 0.0;
        }
        float xt = row.getFloat((off + target) << 2);
        int vb = cx.vector ? S.loopBound(V) : 0;
        float max = maxOf(row, off, V, vb);
        double sum;
        if (vb > 0) {
            sum = expSum(row, off, V, vb, max, grad);
            if (grad) {
                float inv = (float) (1.0 / sum);
                float pt = row.getFloat((off + target) << 2) * inv;
                scaleRow(row, off, V, vb, inv, gradScale);
                row.putFloat((off + target) << 2, (pt - 1.0f) * gradScale);
            }
        } else {
            // scalar: CrossEntropy.forwardBackward's operations (double exp and sum)
            sum = 0.0;
            for (int i = 0; i < V; i++) {
                sum += Math.exp(row.getFloat((off + i) << 2) - max);
            }
            if (grad) {
                for (int i = 0; i < V; i++) {
                    float p = (float) (Math.exp(row.getFloat((off + i) << 2) - max) / sum);
                    float onehot = i == target ? 1.0f : 0.0f;
                    row.putFloat((off + i) << 2, (p - onehot) * gradScale);
                }
            }
        }
        return (max - (double) xt) + Math.log(sum);
    }

    // The row's three passes are separate methods that exchange only numbers and the buffer, never vectors. In
    // one method, C2 (JDK 17) stopped inlining at its node-count cutoff right after VectorMath.exp, so the
    // remaining vector loads and stores ran as calls that box every vector: gigabytes of garbage per step
    // and the exp loop at a fraction of its speed (measured with a JFR allocation profile).

    /** max over the row's V logits (vector lanes for [0, vb), then the tail). */
    private static float maxOf(ByteBuffer row, int off, int V, int vb) {
        float max = Float.NEGATIVE_INFINITY;
        int i = 0;
        if (vb > 0) {
            FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (; i < vb; i += VL) {
                mx = mx.max(ld(row, off + i));
            }
            max = mx.reduceLanes(VectorOperators.MAX);
        }
        for (; i < V; i++) {
            float v = row.getFloat((off + i) << 2);
            if (v > max) {
                max = v;
            }
        }
        return max;
    }

    /**
     * Σ exp(x − max) over the row: float lanes summed over blocks of 64 vectors, each block's lanes added in
     * {@link Lanes}' order into a double, then the tail; with grad the exponentials replace the logits.
     */
    private static double expSum(ByteBuffer row, int off, int V, int vb, float max, boolean grad) {
        double sum = 0.0;
        int i = 0;
        while (i < vb) {
            int end = Math.min(vb, i + 64 * VL);
            sum += grad ? expBlockStored(row, off, i, end, max) : expBlock(row, off, i, end, max);
            i = end;
        }
        for (; i < V; i++) {
            float e = (float) Math.exp(row.getFloat((off + i) << 2) - max);
            if (grad) {
                row.putFloat((off + i) << 2, e);
            }
            sum += e;
        }
        return sum;
    }

    /** Σ over lanes of exp(x − max) for [from, to) (whole vectors), the lanes added in {@link Lanes}' order. */
    private static float expBlock(ByteBuffer row, int off, int from, int to, float max) {
        FloatVector acc = FloatVector.zero(S);
        for (int i = from; i < to; i += VL) {
            acc = acc.add(VectorMath.expNonPositive(ld(row, off + i).sub(max)));
        }
        return Lanes.sum(acc);
    }

    /** As {@link #expBlock}, the exponentials also written over the logits. */
    private static float expBlockStored(ByteBuffer row, int off, int from, int to, float max) {
        FloatVector acc = FloatVector.zero(S);
        for (int i = from; i < to; i += VL) {
            FloatVector e = VectorMath.expNonPositive(ld(row, off + i).sub(max));
            st(e, row, off + i);
            acc = acc.add(e);
        }
        return Lanes.sum(acc);
    }

    /** The row's exponentials times inv times gradScale, in place. */
    private static void scaleRow(ByteBuffer row, int off, int V, int vb, float inv, float gradScale) {
        int i = 0;
        for (; i < vb; i += VL) {
            st(ld(row, off + i).mul(inv).mul(gradScale), row, off + i);
        }
        for (; i < V; i++) {
            row.putFloat((off + i) << 2, row.getFloat((off + i) << 2) * inv * gradScale);
        }
    }
}
