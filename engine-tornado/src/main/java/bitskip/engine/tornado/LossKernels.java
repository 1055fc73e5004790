package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The losses: softmax cross-entropy over a chunk of LM-head logits (kernels-java CrossEntropy), split into a
 * per-row pass (max, Σ exp in double, the row's loss) and a per-element pass (the logit gradients, in
 * parallel over the chunk), and the routing loss's expected exit layer and its gradient (RoutingLoss).
 */
final class LossKernels {
    private LossKernels() {}

    /**
     * One work-item per row r of R: stats[4r] = max, stats[4r+1..4r+4) = Σ_i exp(x_i − max) as a stored
     * double, rowLoss[3r..3r+3) = (max − x[target]) + log Σ as a stored double (0 where the target, ints[r],
     * is −1). a = (logits, stats, rowLoss, R, V).
     */
    static void crossEntropyRows(FloatArray m, IntArray a, IntArray ints) {
        int logits = a.get(0), stats = a.get(1), rowLoss = a.get(2), V = a.get(4);
        for (@Parallel int r = 0; r < a.get(3); r++) {
            int row = logits + r * V;
            int target = ints.get(r);
            float mx = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < V; i++) {
                float x = m.get(row + i);
                if (x > mx) {
                    mx = x;
                }
            }
            double sum = 0.0;
            for (int i = 0; i < V; i++) {
                sum += Math.exp((double) (m.get(row + i) - mx));
            }
            m.set(stats + 4 * r, mx);
            ReduceKernels.storeDouble(m, stats + 4 * r + 1, sum);
            double loss = 0.0;
            if (target >= 0) {
                loss = ((double) mx - (double) m.get(row + target)) + Math.log(sum);
            }
            ReduceKernels.storeDouble(m, rowLoss + 3 * r, loss);
        }
    }

    /**
     * The logits replaced by their gradient, (softmax − onehot)·gradScale (0 on a row whose target is −1),
     * one work-item per element; each reads its logit and the row's statistics, then writes its gradient in
     * its place. a = (logits, stats, R, V); f = (gradScale).
     */
    static void crossEntropyGradient(FloatArray m, IntArray a, IntArray ints, FloatArray f) {
        int logits = a.get(0), stats = a.get(1), V = a.get(3);
        float gradScale = f.get(0);
        for (@Parallel int e = 0; e < a.get(2) * V; e++) {
            int r = e / V, i = e - r * V;
            int target = ints.get(r);
            float d = 0.0f;
            if (target >= 0) {
                float mx = m.get(stats + 4 * r);
                double sum = ReduceKernels.loadDouble(m, stats + 4 * r + 1);
                float p = (float) (Math.exp((double) (m.get(logits + e) - mx)) / sum);
                float onehot = i == target ? 1.0f : 0.0f;
                d = (p - onehot) * gradScale;
            }
            m.set(logits + e, d);
        }
    }

    /** lbar[n] = Σ_l l·p_l·Π_{i&lt;l}(1 − p_i) over pExit (L, N). a = (lbar, pExit, L, N). */
    static void expectedExit(FloatArray m, IntArray a) {
        int lbar = a.get(0), pExit = a.get(1), L = a.get(2), N = a.get(3);
        for (@Parallel int n = 0; n < N; n++) {
            float survive = 1.0f, e = 0.0f;
            for (int l = 0; l < L; l++) {
                float p = m.get(pExit + l * N + n);
                e += (float) l * (p * survive);
                survive = survive * (1.0f - p);
            }
            m.set(lbar + n, e);
        }
    }

    /**
     * dpExit (L, N) += d(gradScale·loss)/dpExit (RoutingLoss.backward); with batchMean the residual uses the
     * mean of lbar that {@link ReduceKernels#finish} left at m[meanAt]. a = (dpExit, pExit, lbar, L, N,
     * batchMean, meanAt); f = (target, gradScale).
     */
    static void routingBackward(FloatArray m, IntArray a, FloatArray f) {
        int dpExit = a.get(0), pExit = a.get(1), lbar = a.get(2), L = a.get(3), N = a.get(4);
        boolean batchMean = a.get(5) != 0;
        int meanAt = a.get(6);
        float target = f.get(0), gradScale = f.get(1);
        for (@Parallel int n = 0; n < N; n++) {
            float residual = batchMean ? m.get(meanAt) - target : m.get(lbar + n) - target;
            float dlbar = gradScale * 2.0f * residual / (float) N;
            float rest = 0.0f;
            for (int l = L - 1; l >= 0; l--) {
                float survive = 1.0f;
                for (int i = 0; i < l; i++) {
                    survive = survive * (1.0f - m.get(pExit + i * N + n));
                }
                int at = dpExit + l * N + n;
                m.set(at, m.get(at) + dlbar * survive * ((float) l - rest));
                float p = m.get(pExit + l * N + n);
                rest = (float) l * p + (1.0f - p) * rest;
            }
        }
    }
}
