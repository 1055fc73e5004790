package bitskip.model.infer;

import bitskip.engine.cpu.Lanes;
import bitskip.engine.cpu.VectorMath;
import bitskip.kernels.ExitAdapter;
import bitskip.kernels.Rope;
import bitskip.kernels.Router;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * One sequence being decoded by an {@link InferenceModel}: a {@link KvCache} per layer with its fill index,
 * and the hidden state of every position.
 *
 * <h2>KV-cache policy for early exits: lazy fill (recompute on demand)</h2>
 * A token that exits after layer e leaves no keys and values in the layers above e. Each position keeps its
 * <i>frontier</i>: the number of layers it has been through and the hidden state they produced. When a
 * later token reaches a layer l whose cache does not cover every earlier position, the missing positions
 * (those from the layer's fill index on, whose frontier is then exactly l) are run through layer l first,
 * in the same batch as the new token and in position order, from their frontier states; so the cache of
 * layer l is complete before any query of layer l reads it. Every key and value is therefore the one the
 * full model computes (no copied or approximated states), and a token's exit output is exactly the full
 * model's output at that layer. The cost is paid only when a deeper token needs the layer. Frontiers never
 * increase along positions, which makes "positions from the fill index on" exactly the missing ones.
 * Self-speculative verification is the same mechanism: the last draft is advanced through all layers,
 * which first completes layers E..L-1 for the drafted positions from their exit-layer states.
 *
 * <p>Every row goes through the same per-row code (quantization, integer GEMM, attention over the cache,
 * LayerNorm), so processing tokens one at a time or in batches gives bit-identical results.
 */
public final class Session {
    /** Decides after a layer whether the newest token exits there. */
    @FunctionalInterface
    public interface ExitRule {
        /** @param layer the layer just computed (0-based); @param pos the token's position */
        boolean exit(Session s, int layer, int pos);
    }

    private final InferenceModel m;
    private final KvCache[] kv;
    private final int maxRows;
    /** Hidden state of every position: the output of its frontier layer (or its embedding). */
    private final float[] hs;
    /** Layers each position has been through. */
    private final int[] frontier;
    private int n;
    /** Rows processed per layer since creation (compute accounting: row × layer evaluations). */
    private long rowLayers;
    /** Passes over the LM head since creation (one per head product, whatever its number of rows). */
    private long headPasses;
    /** Passes over the draft head since creation. */
    private long draftPasses;

    // scratch, planned for maxRows rows
    private final float[] xa, qb, kb, vb, att, ob, h1, ub, db, zrow, normRow, logits, row, draftLogits;
    /** Codes, integer sums and row scales of each work slot (q, k and v are three products of one call). */
    private final short[][] qs;
    private final int[][] acc;
    private final float[][] scale;
    private final float[] rLn, rMean, rRstd, rHidden, pOut;
    /** LayerNorm mean and rstd of each row of a layer's input, shared by its q, k and v projections. */
    private final float[] rowMean, rowRstd;
    /** An exit adapter's input row, output row and LayerNorm output (exit_head = adapter). */
    private final float[] aIn, aOut, aLn;
    /** D_l·x of a low-rank exit (exit_head = lowrank). */
    private final float[] lowRankT;
    private int logitsPos = -1, logitsDepth = -1;
    /**
     * Logits of a block of consecutive positions computed by {@link #prepareLogits} in one pass over the head:
     * rows [0, blockCount) of block are positions blockPos.., each at the frontier recorded in blockDepth.
     */
    private float[] block = new float[0], blockNorm = new float[0];
    private int[] blockDepth = new int[0];
    private int blockPos = -1, blockCount = 0;

    Session(InferenceModel m, int maxRows) {
        if (maxRows < 1) {
            throw new IllegalArgumentException("maxRows must be >= 1, got " + maxRows);
        }
        this.m = m;
        this.maxRows = maxRows;
        kv = new KvCache[m.L];
        for (int l = 0; l < m.L; l++) {
            kv[l] = new KvCache(m.T, m.NKV, m.HS, FS.length());
        }
        hs = new float[m.T * m.C];
        frontier = new int[m.T];
        int R = maxRows;
        int maxCp = 0, maxOut = 0, maxP = 0;
        for (TernaryLinear p : m.projections()) {
            maxCp = Math.max(maxCp, p.Cp);
            maxOut = Math.max(maxOut, p.OC);
            maxP = Math.max(maxP, p.P);
        }
        xa = new float[R * m.C];
        qb = new float[R * m.C];
        kb = new float[R * m.KV];
        vb = new float[R * m.KV];
        att = new float[R * m.C];
        ob = new float[R * m.C];
        h1 = new float[R * m.C];
        ub = new float[R * m.F];
        db = new float[R * m.C];
        zrow = new float[maxP];
        scale = new float[3][R];
        qs = new short[3][R * maxCp];
        acc = new int[3][R * maxOut];
        normRow = new float[m.C];
        rowMean = new float[R];
        rowRstd = new float[R];
        row = new float[m.C];
        logits = new float[m.V];
        draftLogits = new float[m.draft == null ? 0 : m.draft.size()];
        rLn = new float[m.C];
        rMean = new float[1];
        rRstd = new float[1];
        rHidden = new float[m.H];
        pOut = new float[1];
        boolean adapters = m.exitHeads != null && m.exitHeads.w != null;
        aIn = new float[adapters ? m.C : 0];
        aOut = new float[aIn.length];
        aLn = new float[aIn.length];
        lowRankT = new float[m.exitHeads != null && m.exitHeads.up != null ? m.exitHeads.rank : 0];
    }

    public InferenceModel model() {
        return m;
    }

    /** Positions processed so far (the next token gets this position). */
    public int length() {
        return n;
    }

    /** Layers position pos has been through. */
    public int frontier(int pos) {
        checkPos(pos);
        return frontier[pos];
    }

    public KvCache cache(int layer) {
        return kv[layer];
    }

    public long rowLayers() {
        return rowLayers;
    }

    public long headPasses() {
        return headPasses;
    }

    public long draftPasses() {
        return draftPasses;
    }

    /** Forgets positions [length, ...): every layer's cache is cropped to them. */
    public void crop(int length) {
        if (length < 0 || length > n) {
            throw new IllegalArgumentException("crop length " + length + " must be in [0, " + n + "]");
        }
        n = length;
        for (KvCache c : kv) {
            c.crop(length);
        }
        if (logitsPos >= length) {
            logitsPos = -1;
        }
        blockCount = 0;
    }

    /**
     * Appends tokens at positions length().., and runs them through layers [0, depth), completing the caches
     * of those layers for earlier positions first (lazy fill). With a rule (single tokens only), stops after
     * the first layer where the rule says the newest token exits. Returns the number of layers the new
     * tokens went through.
     */
    public int advance(int[] tokens, int depth, ExitRule rule) {
        int cnt = tokens.length;
        if (cnt < 1) {
            throw new IllegalArgumentException("advance needs at least one token");
        }
        if (n + cnt > m.T) {
            throw new IllegalArgumentException("the context holds " + m.T + " positions; " + n + " are used and "
                    + cnt + " more were asked");
        }
        if (depth < 1 || depth > m.L) {
            throw new IllegalArgumentException("depth " + depth + " must be in [1, " + m.L + "]");
        }
        if (rule != null && cnt != 1) {
            throw new IllegalArgumentException("an exit rule applies to one token at a time, got " + cnt);
        }
        int p0 = n;
        for (int i = 0; i < cnt; i++) {
            int tok = tokens[i];
            if (tok < 0 || tok >= m.V) {
                throw new IllegalArgumentException("token id " + tok + " is outside the vocabulary [0, " + m.V + ")");
            }
            int pos = p0 + i;
            System.arraycopy(m.wte, tok * m.C, hs, pos * m.C, m.C);
            if (m.wpe != null) {
                for (int c = 0; c < m.C; c++) {
                    hs[pos * m.C + c] += m.wpe[pos * m.C + c];
                }
            }
            frontier[pos] = 0;
        }
        n = p0 + cnt;
        return runLayers(depth, rule);
    }

    /**
     * Runs every position through layers [0, depth) that has not been through them yet (lazy fill, in
     * position order), adding no token: deepens the exits of earlier calls, e.g. to read each exit of the
     * same positions in turn. Returns depth.
     */
    public int deepen(int depth) {
        if (depth < 1 || depth > m.L) {
            throw new IllegalArgumentException("depth " + depth + " must be in [1, " + m.L + "]");
        }
        if (n == 0) {
            throw new IllegalArgumentException("nothing to deepen: the session holds no positions");
        }
        return runLayers(depth, null);
    }

    /** Layers [0, depth) for positions from each layer's fill index on; with a rule, stops where it says. */
    private int runLayers(int depth, ExitRule rule) {
        logitsPos = -1;
        blockCount = 0;
        int d = 0;
        for (int l = 0; l < depth; l++) {
            int start = kv[l].fill;
            for (int r = start; r < n; r += maxRows) {
                layerForward(l, r, Math.min(maxRows, n - r));
            }
            rowLayers += n - start;
            kv[l].fill = n;
            for (int r = start; r < n; r++) {
                frontier[r] = l + 1;
            }
            d = l + 1;
            if (rule != null && l < m.L - 1 && rule.exit(this, l, n - 1)) {
                break;
            }
        }
        return d;
    }

    /** p_exit of layer's router on position pos, which must have just gone through that layer. */
    public float exitProbability(int layer, int pos) {
        checkPos(pos);
        if (frontier[pos] != layer + 1) {
            throw new IllegalArgumentException("position " + pos + " has been through " + frontier[pos]
                    + " layers; the router of layer " + layer + " reads the output of layer " + layer);
        }
        InferenceModel.Layer y = m.layers[layer];
        System.arraycopy(hs, pos * m.C, row, 0, m.C);
        Router.forward(pOut, rLn, rMean, rRstd, rHidden, row, y.routerNormW, y.routerNormB, y.fc1W, y.fc1B,
                y.fc2W, y.fc2B, 1, m.C, m.H, m.config.lnEps());
        return pOut[0];
    }

    /**
     * The logits (V) of position pos at its frontier: final LayerNorm and the shared head on its hidden state
     * (the full model's output when the frontier is the last layer, the exit's otherwise, with the exit's
     * adapter or low-rank term where it has one). The array is reused by the next call.
     */
    public float[] logits(int pos) {
        checkPos(pos);
        if (pos == logitsPos && frontier[pos] == logitsDepth) {
            return logits;
        }
        int b = pos - blockPos;
        if (b >= 0 && b < blockCount && frontier[pos] == blockDepth[b]) {
            System.arraycopy(block, b * m.V, logits, 0, m.V);
        } else {
            head(logits, normRow, pos, 1);
        }
        logitsPos = pos;
        logitsDepth = frontier[pos];
        return logits;
    }

    /**
     * Computes the logits of positions [pos, pos + count) at their frontiers in one pass over the head, for
     * {@link #logits} to hand out until the next advance or crop. Self-speculative verification needs the
     * logits of every drafted position; the head is most of the bytes a token reads, so reading it once for
     * all of them instead of once per position is most of verification's cost. Bit-identical to computing
     * them one by one: {@link PackedGemm#dense}'s result for a row does not depend on the number of rows.
     */
    public void prepareLogits(int pos, int count) {
        checkPos(pos);
        if (count < 1 || pos + count > n) {
            throw new IllegalArgumentException("positions [" + pos + ", " + (pos + count) + ") must lie in [0, " + n + ")");
        }
        if (blockDepth.length < count) {
            block = new float[count * m.V];
            blockNorm = new float[count * m.C];
            blockDepth = new int[count];
        }
        System.arraycopy(frontier, pos, blockDepth, 0, count);
        head(block, blockNorm, pos, count);
        blockPos = pos;
        blockCount = count;
    }

    /**
     * The logits computed by the last {@link #prepareLogits}: row i (V floats from i·V) is position
     * blockPos + i. Valid until the next advance, deepen or crop; for readers that take every row at once.
     */
    float[] blockLogits() {
        return block;
    }

    /** out (count × V) = the shared head on the final LayerNorm of positions [pos, pos + count), in one pass. */
    private void head(float[] out, float[] norm, int pos, int count) {
        finalNorm(norm, pos, count);
        m.head.forward(out, norm, 0, count, m.par);
        for (int i = 0; i < count; i++) {
            lowRank(out, i * m.V, null, norm, i * m.C, frontier[pos + i] - 1);
        }
        headPasses++;
    }

    /**
     * Under exit_head = lowrank, at an early exit l &lt; L−1: adds U_l·(D_l·x) to the logits of x = norm[xOff..)
     * at out[oOff..), for every token, or for the tokens ids (the draft vocabulary) in their order. Row by row
     * (the same sums for a token whichever rows are asked), so the draft logits are the full ones' rows.
     */
    private void lowRank(float[] out, int oOff, int[] ids, float[] norm, int xOff, int l) {
        InferenceModel.ExitHeads e = m.exitHeads;
        if (e == null || e.up == null || l < 0 || l >= m.L - 1) {
            return;
        }
        int r = e.rank;
        float[] d = e.down[l], u = e.up[l];
        for (int k = 0; k < r; k++) {
            float t = 0.0f;
            for (int c = 0; c < m.C; c++) {
                t += d[k * m.C + c] * norm[xOff + c];
            }
            lowRankT[k] = t;
        }
        int n = ids == null ? m.V : ids.length;
        for (int j = 0; j < n; j++) {
            int v = ids == null ? j : ids[j];
            float acc = 0.0f;
            for (int k = 0; k < r; k++) {
                acc += u[v * r + k] * lowRankT[k];
            }
            out[oOff + j] += acc;
        }
    }

    /**
     * The final LayerNorm of positions [pos, pos + count) at their frontiers; a position whose frontier is an
     * early exit l &lt; L−1 with an adapter goes through it first (the kernel itself, one row: the training
     * model's bits).
     */
    private void finalNorm(float[] norm, int pos, int count) {
        for (int i = 0; i < count; i++) {
            int l = frontier[pos + i] - 1;
            if (m.exitHeads != null && m.exitHeads.w != null && l >= 0 && l < m.L - 1) {
                InferenceModel.ExitHeads a = m.exitHeads;
                System.arraycopy(hs, (pos + i) * m.C, aIn, 0, m.C);
                ExitAdapter.forward(aOut, aLn, rMean, rRstd, aIn, a.normW[l], a.normB[l], a.w[l], 1, m.C, m.config.lnEps());
                RowOps.layerNorm(norm, i * m.C, aOut, 0, m.finalNormW, m.finalNormB, m.C, m.config.lnEps());
            } else {
                RowOps.layerNorm(norm, i * m.C, hs, (pos + i) * m.C, m.finalNormW, m.finalNormB, m.C, m.config.lnEps());
            }
        }
    }

    /**
     * The draft head's logits (V_d, in the order of {@code model().draft().ids}) of position pos at its
     * frontier: the exit's adapter where it has one, the final LayerNorm and the rows of the head for the
     * draft vocabulary (with the exit's low-rank term's rows where it has one), computed exactly as
     * the same rows of {@link #logits} (bit-identical values, a V_d/V share of the bytes). The array is reused by
     * the next call.
     */
    public float[] draftLogits(int pos) {
        checkPos(pos);
        if (m.draft == null) {
            throw new IllegalStateException("the model has no draft head (export it with --draft-tokens N)");
        }
        finalNorm(normRow, pos, 1);
        m.draft.head.forward(draftLogits, normRow, 0, 1, m.par);
        lowRank(draftLogits, 0, m.draft.ids, normRow, 0, frontier[pos] - 1);
        draftPasses++;
        return draftLogits;
    }

    /** The hidden state (C) of position pos at its frontier, copied. */
    public float[] hidden(int pos) {
        checkPos(pos);
        float[] h = new float[m.C];
        System.arraycopy(hs, pos * m.C, h, 0, m.C);
        return h;
    }

    private void checkPos(int pos) {
        if (pos < 0 || pos >= n) {
            throw new IllegalArgumentException("position " + pos + " is outside [0, " + n + ")");
        }
    }

    // ---- one block on rows [r0, r0 + rows) (positions r0..), in place in hs --------------------------

    private void layerForward(int l, int r0, int rows) {
        InferenceModel.Layer y = m.layers[l];
        int C = m.C;
        float eps = m.config.lnEps();
        int xOff = r0 * C;
        float[] src = hs;
        int srcOff = xOff;
        if (m.config.attnInputNorm() && !m.config.hadamard()) {
            for (int i = 0; i < rows; i++) {
                RowOps.layerNorm(xa, i * C, hs, xOff + i * C, null, null, C, eps);
            }
            src = xa;
            srcOff = 0;
        }
        inputStats(src, srcOff, C, rows); // q, k and v normalize the same rows: their LayerNorm statistics once
        PackedGemm.ternary(rows, m.par, job(0, y.q, src, srcOff, rows, qb, false),
                job(1, y.k, src, srcOff, rows, kb, false), job(2, y.v, src, srcOff, rows, vb, false));
        Rope.forward(qb, qb, m.cos, m.sin, 1, rows, m.NH, m.HS, r0);
        Rope.forward(kb, kb, m.cos, m.sin, 1, rows, m.NKV, m.HS, r0);
        KvCache cache = kv[l];
        cache.put(r0, rows, kb, vb);
        attention(cache, r0, rows);
        project(y.o, att, 0, rows, ob, false);
        for (int i = 0; i < rows * C; i++) {
            ob[i] = hs[xOff + i] + ob[i];
        }
        RowOps.stats(ob, 0, C, rows, eps, rowMean, rowRstd);
        for (int i = 0; i < rows; i++) {
            RowOps.layerNorm(h1, i * C, ob, i * C, y.attnNormW, y.attnNormB, C, rowMean[i], rowRstd[i]);
        }
        project(y.up, h1, 0, rows, ub, true); // the FFN's relu2, on top of the projection's own when configured
        project(y.down, ub, 0, rows, db, false);
        for (int i = 0; i < rows * C; i++) {
            db[i] = h1[i] + db[i];
        }
        RowOps.stats(db, 0, C, rows, eps, rowMean, rowRstd);
        for (int i = 0; i < rows; i++) {
            RowOps.layerNorm(hs, xOff + i * C, db, i * C, y.ffnNormW, y.ffnNormB, C, rowMean[i], rowRstd[i]);
        }
    }

    /**
     * Causal GQA attention of the rows' queries (qb) over the cache: kernels.Attention's operations per
     * (query, head), arranged for vector lanes without changing what a position's value depends on. The scores
     * take a vector's width of positions at once from the transposed keys ({@link KvCache}): each lane is one
     * position's dot product, q_0·k_0 + q_1·k_1 + … as a chain of fused multiply-adds in component order
     * (positions past the last whole vector do the same chain with {@link Math#fma}: the same bits), then times
     * 1/√HS; the exponentials on float lanes ({@link VectorMath#exp}, exact IEEE operations); the weighted sum of
     * values lane by lane over the components, positions in order (multiply, then add, as the scalar code). The
     * (row, head) pairs are split over the threads; each is computed by one thread with the same code, so the
     * result depends neither on the thread count nor on how many rows are processed together.
     */
    private void attention(KvCache cache, int r0, int rows) {
        int items = rows * m.NH;
        long work = (long) items * (r0 + rows) * m.HS * 2;
        m.par.forRange(items, work, (from, to) -> {
            float[] sc = SCORES.get();
            if (sc.length < m.T) {
                sc = new float[m.T];
                SCORES.set(sc);
            }
            for (int it = from; it < to; it++) {
                attendOne(cache, r0 + it / m.NH, it / m.NH, it % m.NH, sc);
            }
        });
    }

    /** Per-thread scores of one (query, head) over the positions (grows to the context, never shrinks). */
    private static final ThreadLocal<float[]> SCORES = ThreadLocal.withInitial(() -> new float[0]);
    private static final VectorSpecies<Float> FS = FloatVector.SPECIES_PREFERRED;

    private void attendOne(KvCache cache, int pos, int t, int h, float[] scores) {
        int HS = m.HS, kvh = h / (m.NH / m.NKV);
        int qo = (t * m.NH + h) * HS;
        int L = FS.length(), n = pos + 1;
        float sc = (float) (1.0 / Math.sqrt(HS));
        float[] k = cache.k;
        // the key tiles hold L positions each (the cache was made with this species' length): component j of
        // position s at keyBase(s) + j·L + s % L, the next tile KV·L floats further
        int hk = kvh * HS * L, tileStride = m.KV * L;
        // scores: four tiles of positions at a time (four independent multiply-add chains), then one, then the
        // positions past the last whole tile one by one
        FloatVector vmax = FloatVector.broadcast(FS, Float.NEGATIVE_INFINITY);
        int s = 0;
        for (; s + 4 * L <= n; s += 4 * L) {
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            for (int i = 0, ko = cache.keyBase(s) + hk; i < HS; i++, ko += L) {
                FloatVector qi = FloatVector.broadcast(FS, qb[qo + i]);
                a0 = qi.fma(FloatVector.fromArray(FS, k, ko), a0);
                a1 = qi.fma(FloatVector.fromArray(FS, k, ko + tileStride), a1);
                a2 = qi.fma(FloatVector.fromArray(FS, k, ko + 2 * tileStride), a2);
                a3 = qi.fma(FloatVector.fromArray(FS, k, ko + 3 * tileStride), a3);
            }
            a0 = a0.mul(sc);
            a1 = a1.mul(sc);
            a2 = a2.mul(sc);
            a3 = a3.mul(sc);
            a0.intoArray(scores, s);
            a1.intoArray(scores, s + L);
            a2.intoArray(scores, s + 2 * L);
            a3.intoArray(scores, s + 3 * L);
            vmax = vmax.max(a0).max(a1).max(a2).max(a3);
        }
        for (; s + L <= n; s += L) {
            FloatVector a = FloatVector.zero(FS);
            for (int i = 0, ko = cache.keyBase(s) + hk; i < HS; i++, ko += L) {
                a = FloatVector.broadcast(FS, qb[qo + i]).fma(FloatVector.fromArray(FS, k, ko), a);
            }
            a = a.mul(sc);
            a.intoArray(scores, s);
            vmax = vmax.max(a);
        }
        float max = vmax.reduceLanes(VectorOperators.MAX);
        for (; s < n; s++) {
            float dot = 0.0f;
            for (int i = 0, ko = cache.keyBase(s) + hk + s % L; i < HS; i++, ko += L) {
                dot = Math.fma(qb[qo + i], k[ko], dot);
            }
            float score = dot * sc;
            scores[s] = score;
            max = Math.max(max, score);
        }
        int nb = FS.loopBound(n);
        FloatVector sum = FloatVector.zero(FS);
        for (s = 0; s < nb; s += L) {
            FloatVector e = VectorMath.expNonPositive(FloatVector.fromArray(FS, scores, s).sub(max));
            e.intoArray(scores, s);
            sum = sum.add(e);
        }
        // Lanes.sum's rotations written out (the same adds in the same order): called here, Lanes.sum held 38 of 622
        // samples of a decoding JFR, far more than one lane sum costs (a helper compiled on its own, its vector boxed)
        for (int half = L / 2; half >= 1; half /= 2) {
            sum = sum.add(sum.rearrange(Lanes.rotation(half)));
        }
        float total = sum.lane(0);
        for (; s < n; s++) {
            float e = (float) Math.exp(scores[s] - max);
            scores[s] = e;
            total += e;
        }
        float inv = 1.0f / total;
        weightedValues(cache.v, scores, n, inv, kvh, qo);
    }

    /**
     * att[qo..qo+HS) = Σ_s (scores[s]·inv)·v_s over positions s &lt; n in order, each lane one component (multiply,
     * then add, as the scalar code). The components go four vectors at a time with the sums in registers (four
     * independent add chains), then one vector, then one by one.
     */
    private void weightedValues(float[] v, float[] scores, int n, float inv, int kvh, int qo) {
        int HS = m.HS, NKV = m.NKV, L = FS.length();
        int i = 0;
        for (; i + 4 * L <= HS; i += 4 * L) {
            FloatVector a0 = FloatVector.zero(FS), a1 = a0, a2 = a0, a3 = a0;
            for (int s = 0, vo = kvh * HS + i; s < n; s++, vo += NKV * HS) {
                FloatVector w = FloatVector.broadcast(FS, scores[s] * inv);
                a0 = FloatVector.fromArray(FS, v, vo).mul(w).add(a0);
                a1 = FloatVector.fromArray(FS, v, vo + L).mul(w).add(a1);
                a2 = FloatVector.fromArray(FS, v, vo + 2 * L).mul(w).add(a2);
                a3 = FloatVector.fromArray(FS, v, vo + 3 * L).mul(w).add(a3);
            }
            a0.intoArray(att, qo + i);
            a1.intoArray(att, qo + i + L);
            a2.intoArray(att, qo + i + 2 * L);
            a3.intoArray(att, qo + i + 3 * L);
        }
        for (; i + L <= HS; i += L) {
            FloatVector a = FloatVector.zero(FS);
            for (int s = 0, vo = kvh * HS + i; s < n; s++, vo += NKV * HS) {
                a = FloatVector.fromArray(FS, v, vo).mul(FloatVector.broadcast(FS, scores[s] * inv)).add(a);
            }
            a.intoArray(att, qo + i);
        }
        for (; i < HS; i++) {
            float a = 0.0f;
            for (int s = 0, vo = kvh * HS + i; s < n; s++, vo += NKV * HS) {
                a += (scores[s] * inv) * v[vo];
            }
            att[qo + i] = a;
        }
    }

    /** y (rows, OC) = the projection of x's rows (see {@link #job}); one product alone. */
    private void project(TernaryLinear p, float[] x, int xOff, int rows, float[] y, boolean thenRelu2) {
        inputStats(x, xOff, p.in, rows);
        PackedGemm.ternary(rows, m.par, job(0, p, x, xOff, rows, y, thenRelu2));
    }

    /**
     * Under the Hadamard path, the LayerNorm mean and rstd of the rows (width C) that the next products quantize,
     * into rowMean and rowRstd, where {@link #job} reads them.
     */
    private void inputStats(float[] x, int xOff, int C, int rows) {
        if (m.config.hadamard()) {
            RowOps.stats(x, xOff, C, rows, m.config.lnEps(), rowMean, rowRstd);
        }
    }

    /**
     * The projection y (rows, OC) of x's rows as a product for {@link PackedGemm#ternary(int, Parallel,
     * PackedGemm.TernaryJob...)}: the rows quantized here (Hadamard path or plain quantization) into the codes of
     * a work slot (one per product of the same call), the scaling as its epilogue: (float) acc · f on float lanes,
     * then the projection's relu2 where configured and relu2 again when thenRelu2 (the FFN's own, fused here),
     * the scalar code's operations element by element ({@link RowOps#scaleInts}). The Hadamard path's LayerNorm
     * takes each row's mean and rstd from rowMean and rowRstd ({@link #inputStats} of x, computed by the caller).
     */
    private PackedGemm.TernaryJob job(int slot, TernaryLinear p, float[] x, int xOff, int rows, float[] y,
                                      boolean thenRelu2) {
        int bits = m.config.projectionBits();
        boolean had = m.config.hadamard();
        short[] qs = this.qs[slot];
        int[] acc = this.acc[slot];
        float[] scale = this.scale[slot];
        for (int i = 0; i < rows; i++) {
            scale[i] = had ? RowOps.hadamardQuantize(qs, i * p.Cp, p.Cp, x, xOff + i * p.in, p.in, p.P, p.lnWeight,
                    p.lnBias, rowMean[i], rowRstd[i], bits, zrow) : RowOps.quantize(qs, i * p.Cp, p.Cp, x, xOff + i * p.in, p.in, bits);
        }
        float Q = (float) ((1 << (bits - 1)) - 1);
        int relu2s = (m.config.projectionRelu2() ? 1 : 0) + (thenRelu2 ? 1 : 0);
        return new PackedGemm.TernaryJob(acc, qs, p.packed, p.lut(), p.Cp, p.OC, (from, to) -> {
            for (int i = 0; i < rows; i++) {
                RowOps.scaleInts(y, acc, i * p.OC, from, to, (p.alpha * scale[i]) / Q, relu2s);
            }
        });
    }
}
