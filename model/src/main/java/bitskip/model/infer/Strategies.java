package bitskip.model.infer;

import java.util.Arrays;

/**
 * The decoding strategies: full model, fixed exit layer, router exit, confidence exit (all one token per
 * step, through {@link Session#advance} with an exit rule) and self-speculative decoding (LayerSkip).
 * Exit layers are counted from 1: exit layer E means the output of the E-th layer, E = L the full model.
 */
public final class Strategies {
    private Strategies() {}

    public static DecodingStrategy full() {
        return new Exit("full", Integer.MAX_VALUE, null);
    }

    /** Every token exits after layer E (1..L); the prompt too goes through E layers only. */
    public static DecodingStrategy fixedExit(int E) {
        if (E < 1) {
            throw new IllegalArgumentException("exit layer must be >= 1, got " + E);
        }
        return new Exit("exit@" + E, E, null);
    }

    /** A token exits after the first layer whose router gives p_exit > threshold (paper section 3). */
    public static DecodingStrategy router(float threshold) {
        checkThreshold(threshold);
        return new Exit("router>" + threshold, Integer.MAX_VALUE,
                (s, l, pos) -> s.exitProbability(l, pos) > threshold);
    }

    /** A token exits after the first layer whose exit head gives a max softmax probability >= threshold. */
    public static DecodingStrategy confidence(float threshold) {
        checkThreshold(threshold);
        return new Exit("confidence>=" + threshold, Integer.MAX_VALUE,
                (s, l, pos) -> maxProbability(s.logits(pos)) >= threshold);
    }

    /** Self-speculative decoding: K drafts from the first E layers and the shared head, one verify pass. */
    public static DecodingStrategy selfSpeculative(int E, int K) {
        if (E < 1 || K < 1) {
            throw new IllegalArgumentException("self-speculation needs exit layer >= 1 and drafts >= 1, got E=" + E
                    + " K=" + K);
        }
        return new SelfSpeculative(E, K);
    }

    private static void checkThreshold(float t) {
        if (!(t > 0 && t < 1)) {
            throw new IllegalArgumentException("threshold must be in (0, 1), got " + t);
        }
    }

    static double maxProbability(float[] logits) {
        float max = Float.NEGATIVE_INFINITY;
        for (float x : logits) {
            max = Math.max(max, x);
        }
        double sum = 0;
        for (float x : logits) {
            sum += Math.exp(x - max);
        }
        return 1.0 / sum;
    }

    private static final class Exit implements DecodingStrategy {
        private final String name;
        private final int depth;
        private final Session.ExitRule rule;

        Exit(String name, int depth, Session.ExitRule rule) {
            this.name = name;
            this.depth = depth;
            this.rule = rule;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public int prefillDepth(int layers) {
            return Math.min(depth, layers);
        }

        @Override
        public int[] step(Session s, int next, int budget, Sampler sampler, DecodeStats stats) {
            InferenceModel m = s.model();
            int d = s.advance(new int[] {next}, Math.min(depth, m.L), rule);
            stats.exit(d);
            return new int[] {sampler.next(s.logits(s.length() - 1), m.V)};
        }
    }

    private static final class SelfSpeculative implements DecodingStrategy {
        private final int E, K;

        SelfSpeculative(int E, int K) {
            this.E = E;
            this.K = K;
        }

        @Override
        public String name() {
            return "self-speculative(E=" + E + ",K=" + K + ")";
        }

        @Override
        public int prefillDepth(int layers) {
            return layers;
        }

        @Override
        public int[] step(Session s, int next, int budget, Sampler sampler, DecodeStats stats) {
            InferenceModel m = s.model();
            int L = m.L, V = m.V;
            int e = Math.min(E, L);
            int n0 = s.length();
            int k = Math.max(0, Math.min(K, Math.min(budget - 1, m.T - n0 - 1)));
            if (e == L) {
                k = 0; // nothing to skip: the drafts would be the full model's tokens at full cost
            }
            int[] drafts = new int[k];
            double[][] q = sampler.greedy ? null : new double[k][];
            int cur = next;
            for (int i = 0; i < k; i++) {
                s.advance(new int[] {cur}, e, null);
                float[] logits = s.logits(n0 + i);
                if (sampler.greedy) {
                    drafts[i] = Sampler.argmax(logits, V);
                } else {
                    q[i] = sampler.distribution(logits, V);
                    drafts[i] = sampler.draw(q[i]);
                }
                cur = drafts[i];
            }
            // verify: the last draft goes through all layers; on the way, lazy fill runs the earlier drafts
            // (from their exit-layer states) through layers E..L-1 in the same batch
            s.advance(new int[] {cur}, L, null);
            s.prepareLogits(n0, k + 1); // one head pass for all k + 1 positions
            stats.verifyPasses++;
            stats.drafted += k;
            int[] out = new int[k + 1];
            int a = 0;
            int produced = 0;
            for (int i = 0; i <= k; i++) {
                float[] logits = s.logits(n0 + i);
                if (i == k) {
                    out[produced++] = sampler.next(logits, V);
                    stats.exit(L);
                    break;
                }
                if (sampler.greedy) {
                    int f = Sampler.argmax(logits, V);
                    if (f == drafts[i]) {
                        out[produced++] = f;
                        a++;
                        stats.exit(e);
                        continue;
                    }
                    out[produced++] = f;
                    stats.exit(L);
                    break;
                }
                // speculative sampling: accept d with probability min(1, p(d)/q(d)), else draw from (p - q)+
                double[] p = sampler.distribution(logits, V);
                int d = drafts[i];
                if (sampler.uniform() * q[i][d] < p[d]) {
                    out[produced++] = d;
                    a++;
                    stats.exit(e);
                    continue;
                }
                double[] r = new double[V];
                double sum = 0;
                for (int v = 0; v < V; v++) {
                    r[v] = Math.max(0.0, p[v] - q[i][v]);
                    sum += r[v];
                }
                if (sum > 0) {
                    for (int v = 0; v < V; v++) {
                        r[v] /= sum;
                    }
                } else {
                    r = p;
                }
                out[produced++] = sampler.draw(r);
                stats.exit(L);
                break;
            }
            stats.accepted += a;
            int keep = Math.min(produced, budget);
            // positions n0 .. n0+keep-1 hold next and the accepted drafts; the rest is forgotten
            s.crop(n0 + keep);
            return Arrays.copyOf(out, keep);
        }
    }
}
