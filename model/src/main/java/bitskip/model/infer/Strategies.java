package bitskip.model.infer;

import java.util.Arrays;

/**
 * The decoding strategies: full model, fixed exit layer, router exit, confidence exit (all one token per
 * step, through {@link Session#advance} with an exit rule) and self-speculative decoding (LayerSkip).
 * Exit layers are counted from 1: exit layer E means the output of the E-th layer, E = L the full model.
 *
 * <h2>The cheaper heads: what is exact and what is approximate</h2>
 * <ul>
 *   <li>The int8 head ({@link LmHead}) is a different deployed model from the float head: every strategy
 *       computes with the head in the file, and the int8 head's cost is its perplexity (measured by
 *       {@code bitskip eval --model}), not a decoding approximation.</li>
 *   <li>Self-speculation with the draft head is <b>exact</b>: drafts choose among the draft vocabulary only,
 *       verification uses the full head, so greedy output is the full model's token for token, and sampled
 *       output has the full model's distribution (speculative sampling with the draft distribution, zero
 *       outside the subset; the residual covers the rest).</li>
 *   <li>The confidence exit with the draft filter is <b>exact where the full head's most likely token at a
 *       layer is in the draft vocabulary</b>: its max softmax probability over the subset is then an upper
 *       bound of the full one (same numerator, smaller denominator), so a subset below the threshold proves
 *       that the exact rule continues; a subset at or above it is checked on the full head, which also gives
 *       the exit's logits. It can only differ by continuing past a layer where the exact rule exits on a token
 *       outside the subset; it never exits where the exact rule does not.</li>
 * </ul>
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
                (s, l, pos) -> maxProbability(s.logits(pos), s.model().V) >= threshold);
    }

    /**
     * The confidence exit decided on the draft head first (see the class comment for what is exact): below
     * the threshold on the subset, continue; else exit iff the full head's max probability reaches it.
     */
    public static DecodingStrategy confidenceDraftFiltered(float threshold) {
        checkThreshold(threshold);
        return new Exit("confidence>=" + threshold + "/draft", Integer.MAX_VALUE,
                (s, l, pos) -> maxProbability(s.draftLogits(pos), s.model().draft.size()) >= threshold
                        && maxProbability(s.logits(pos), s.model().V) >= threshold);
    }

    /**
     * Self-speculative decoding: K drafts from the first E layers, one verify pass. Drafts score the draft
     * vocabulary when the model has a draft head and draftHead is true, else the whole head.
     */
    public static DecodingStrategy selfSpeculative(int E, int K, boolean draftHead) {
        if (E < 1 || K < 1) {
            throw new IllegalArgumentException("self-speculation needs exit layer >= 1 and drafts >= 1, got E=" + E
                    + " K=" + K);
        }
        return new SelfSpeculative(E, K, draftHead);
    }

    /** Self-speculative decoding with the model's draft head if it has one. */
    public static DecodingStrategy selfSpeculative(int E, int K) {
        return selfSpeculative(E, K, true);
    }

    private static void checkThreshold(float t) {
        if (!(t > 0 && t < 1)) {
            throw new IllegalArgumentException("threshold must be in (0, 1), got " + t);
        }
    }

    /** The largest softmax probability of logits[0, n). */
    static double maxProbability(float[] logits, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, logits[i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(logits[i] - max);
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
            long t0 = System.nanoTime();
            int d = s.advance(new int[] {next}, Math.min(depth, m.L), rule);
            long t1 = System.nanoTime();
            stats.exit(d);
            int[] out = {sampler.next(s.logits(s.length() - 1), m.V)};
            stats.layerNanos += t1 - t0; // a rule's exit decisions (router, confidence heads) count as layers
            stats.headNanos += System.nanoTime() - t1;
            return out;
        }
    }

    private static final class SelfSpeculative implements DecodingStrategy {
        private final int E, K;
        private final boolean draftHead;

        SelfSpeculative(int E, int K, boolean draftHead) {
            this.E = E;
            this.K = K;
            this.draftHead = draftHead;
        }

        @Override
        public String name() {
            return "self-speculative(E=" + E + ",K=" + K + (draftHead ? "" : ",full-head drafts") + ")";
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
            DraftHead dh = draftHead ? m.draft : null;
            int cur = next;
            long t0 = System.nanoTime();
            for (int i = 0; i < k; i++) {
                s.advance(new int[] {cur}, e, null);
                if (dh != null) { // the draft vocabulary only: its index j is token dh.ids[j]
                    float[] logits = s.draftLogits(n0 + i);
                    if (sampler.greedy) {
                        drafts[i] = dh.ids[Sampler.argmax(logits, dh.size())];
                    } else {
                        double[] sub = sampler.distribution(logits, dh.size());
                        q[i] = new double[V];
                        for (int j = 0; j < sub.length; j++) {
                            q[i][dh.ids[j]] = sub[j];
                        }
                        drafts[i] = sampler.draw(q[i]);
                    }
                } else {
                    float[] logits = s.logits(n0 + i);
                    if (sampler.greedy) {
                        drafts[i] = Sampler.argmax(logits, V);
                    } else {
                        q[i] = sampler.distribution(logits, V);
                        drafts[i] = sampler.draw(q[i]);
                    }
                }
                cur = drafts[i];
            }
            // verify: the last draft goes through all layers; on the way, lazy fill runs the earlier drafts
            // (from their exit-layer states) through layers E..L-1 in the same batch
            long t1 = System.nanoTime();
            s.advance(new int[] {cur}, L, null);
            long t2 = System.nanoTime();
            s.prepareLogits(n0, k + 1); // one head pass for all k + 1 positions
            stats.verifyPasses++;
            stats.drafted += k;
            int[] out = new int[k + 1];
            int a = 0;
            int produced = 0;
            float[] block = s.blockLogits(); // greedy reads the block's rows in place (no copy of V floats per row)
            for (int i = 0; i <= k; i++) {
                float[] logits = sampler.greedy ? null : s.logits(n0 + i);
                if (i == k) {
                    out[produced++] = sampler.greedy ? Sampler.argmax(block, i * V, V) : sampler.next(logits, V);
                    stats.exit(L);
                    break;
                }
                if (sampler.greedy) {
                    int f = Sampler.argmax(block, i * V, V);
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
            stats.draftNanos += k > 0 ? t1 - t0 : 0;
            stats.layerNanos += t2 - (k > 0 ? t1 : t0);
            stats.headNanos += System.nanoTime() - t2;
            int keep = Math.min(produced, budget);
            // positions n0 .. n0+keep-1 hold next and the accepted drafts; the rest is forgotten
            s.crop(n0 + keep);
            return Arrays.copyOf(out, keep);
        }
    }
}
