package bitskip.engine;

import bitskip.kernels.RoutingLoss;
import java.util.Arrays;

/**
 * What the BitSkip model runs on: a small set of <b>primitives</b> (the abstract methods, each one
 * data-parallel kernel on flat tensors, with offsets where an op works on a slice) that every backend
 * writes, and the <b>composites</b> of the model's layers (the default methods: BitLinear, H-BitLinear,
 * attention, the router, the chunked LM-head loss, ...) built from them once, here. A backend overrides a
 * composite only to fuse it (and then says why); {@code JavaBackend}, the oracle, overrides each with the
 * {@code kernels-java} composite of the same name, so the compositions below are tested against code
 * written independently of them. {@code engine/README.md} has the design and the table of what each
 * backend implements.
 *
 * <p>Conventions are the kernels' ({@code kernels-java/README.md}): named dimensions (N rows, C channels,
 * ...), forward ops overwrite their outputs, backward ops accumulate ({@code +=}) into gradients, tensors
 * may be longer than the leading elements an op uses. Integer inputs (token ids, targets, skip flags) stay
 * on the host as {@code int[]}; scalars that the training loop logs come back as {@code double}. Every
 * primitive states the order of its float operations where the reference result is reproduced bit for bit.
 */
public interface Backend extends AutoCloseable {

    // ==== identity ====================================================================================

    /** Short name used on the command line ("java", "cpu", "opencl"). */
    String name();

    /** One line that says what runs where ("scalar Java reference, 1 thread"). */
    String description();

    /**
     * Sets the number format of the matrix products ({@link Precision}); every backend has fp32, and one that
     * has no bf16 mode refuses it here, naming the backend that has.
     */
    default void usePrecision(Precision p) {
        if (p != Precision.FP32) {
            throw new IllegalArgumentException("precision " + p + ": the " + name() + " backend computes in float32 only; "
                    + "bf16 training runs on the cpu backend (--backend cpu) of a CPU with bf16 instructions");
        }
    }

    /** The number format of the matrix products (fp32 unless {@link #usePrecision} chose another). */
    default Precision precision() {
        return Precision.FP32;
    }

    // ==== primitives: memory ==========================================================================

    /** A zero-filled tensor of n floats, owned by this backend until it or the backend is closed. */
    Tensor alloc(String name, int n);

    /** dst[0..src.length) = src. */
    void upload(Tensor dst, float[] src);

    /** dst = src[0..dst.length). */
    void download(Tensor src, float[] dst);

    /**
     * A strided 2-D copy: row r of dst (dstStride floats apart) gets the cols floats of row r of src
     * (srcStride apart), r &lt; rows. A single row may overlap its source within one tensor (it copies as
     * memmove does); several rows may not.
     */
    void copy(Span dst, int dstStride, Span src, int srcStride, int rows, int cols);

    // ==== primitives: compute =========================================================================

    /** out[i] = op(a[i], b[i], s) for i &lt; n, as {@link Pointwise} defines each op. Unused operands are null. */
    void pointwise(Pointwise op, Span out, Span a, Span b, int n, float s);

    /** A whole-tensor sum in double over n elements (b is read only by SQUARED_DIFF). */
    double reduce(Reduction r, Tensor a, Tensor b, int n);

    /** C = alpha·op(A)·op(B) (+ bias) + beta·C, as {@link Gemm} defines it. */
    void gemm(Gemm g);

    /**
     * dst[dstOffset + j] += Σ_i src[i·cols + j] for j &lt; cols, i &lt; rows: the sum formed from 0 in row
     * order, then added (kernel {@code Matmul.backward}'s bias gradient, {@code Embedding.positionsBackward}).
     */
    void sumRows(Tensor dst, int dstOffset, Tensor src, int rows, int cols);

    /**
     * Indexed rows between dense (N, C) and table (tableRows, C): {@link Rows#GATHER} and {@link Rows#GATHER_ADD}
     * read table rows into dense rows, {@link Rows#SCATTER_ADD} adds dense rows into table rows in row order.
     * Every index is checked against tableRows before anything is written.
     */
    void rows(Rows op, Tensor dense, Tensor table, int[] index, int N, int C, int tableRows);

    /**
     * LayerNorm of N rows of C (kernel {@code LayerNorm.forward}): out = (inp − mean)·rstd·weight + bias with
     * the biased variance; saves mean and rstd. {@link Norm#NONE} is a parameter-free LayerNorm.
     */
    void layerNormForward(Tensor out, NormStats saved, Tensor inp, Norm params, int N, int C, float eps);

    /** Accumulates dinp and, for an affine LayerNorm, the gradients in grads (kernel {@code LayerNorm.backward}). */
    void layerNormBackward(Tensor dinp, Norm grads, Tensor dout, Tensor inp, Norm params, NormStats saved, int N,
                           int C);

    /**
     * Inverted-dropout mask (kernel {@code Dropout.mask}): mask[i] = 0 where uniform(seed, offset + i) &lt; p,
     * else 1/(1−p). Counter-based: the same seed gives the same mask on every backend.
     */
    void dropoutMask(Tensor mask, int n, float p, long seed, long offset);

    /**
     * Per-row absmax quantization of N rows of C to {@code bits} bits (kernel {@code Quantize.activationForward}):
     * writes x̂ into out and each row's scale into scale (N).
     */
    void quantizeActivations(Tensor out, Tensor scale, Tensor inp, int N, int C, int bits);

    /** The orthonormal fast Walsh–Hadamard transform of N rows of P, in place (kernel {@code Hadamard.forward}). */
    void fwht(Tensor x, int N, int P);

    /**
     * RoPE (kernel {@code Rope}): overwrites out with inp rotated by the angles of positions pos0 + t (out may
     * be inp), or with {@code backward} adds the transposed rotation of inp (the gradient) into out. cos and
     * sin are the (maxT, HS/2) tables of {@code Rope.table}.
     */
    void rope(Tensor out, Tensor inp, Tensor cos, Tensor sin, Heads shape, int pos0, boolean backward);

    /**
     * Causal softmax in place on rows (T, T) blocks of scores: row r keeps its first (r mod T) + 1 entries,
     * max-shifted, exp'd, normalized; the others become 0 (kernel {@code Attention.forward}'s softmax).
     */
    void softmaxForward(Span x, int rows, int T);

    /**
     * The causal softmax's backward in place on d (kernel {@code Attention.backward}): with p the forward's
     * probabilities, d_s = p_s·(d_s − Σ_u p_u·d_u)·scale on the first (r mod T) + 1 entries of row r, 0 after.
     */
    void softmaxBackward(Span d, Span p, int rows, int T, float scale);

    /**
     * Fused softmax and cross-entropy of R rows of V logits (kernel {@code CrossEntropy.forwardBackward}):
     * rowLoss[r] = logsumexp(row) − row[target] (0 where the target is −1, which is ignored). With
     * {@code grad} the logits are replaced by their gradient (softmax − onehot)·gradScale (0 on ignored rows).
     */
    void crossEntropy(Tensor logits, int[] targets, int R, int V, float gradScale, boolean grad, double[] rowLoss);

    /** One AdamW step on n parameters (kernel {@code AdamW.update}, PyTorch's order). */
    void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, AdamStep step);

    /** Waits for queued work (a no-op where ops run synchronously). */
    default void sync() {}

    /** Frees every tensor this backend still holds, then its other resources. */
    @Override
    default void close() {}

    // ==== composites: memory and element-wise =========================================================

    default void zero(Tensor t) {
        pointwise(Pointwise.FILL, t.at(0), null, null, t.size(), 0.0f);
    }

    /** dst[0..n) = src[0..n). */
    default void copy(Tensor dst, Tensor src, int n) {
        copy(dst, 0, src, 0, n);
    }

    /** dst[dstOffset..dstOffset+n) = src[srcOffset..srcOffset+n). */
    default void copy(Tensor dst, int dstOffset, Tensor src, int srcOffset, int n) {
        copy(dst.at(dstOffset), n, src.at(srcOffset), n, 1, n);
    }

    /** out = a + b. */
    default void add(Tensor out, Tensor a, Tensor b, int n) {
        pointwise(Pointwise.ADD, out.at(0), a.at(0), b.at(0), n, 0.0f);
    }

    /** dst += src. */
    default void accumulate(Tensor dst, Tensor src, int n) {
        add(dst, dst, src, n);
    }

    /** t *= factor. */
    default void scale(Tensor t, int n, float factor) {
        pointwise(Pointwise.SCALE, t.at(0), t.at(0), null, n, factor);
    }

    default void relu2Forward(Tensor out, Tensor inp, int n) {
        pointwise(Pointwise.RELU2, out.at(0), inp.at(0), null, n, 0.0f);
    }

    /** dinp += dout · 2·max(inp, 0). */
    default void relu2Backward(Tensor dinp, Tensor dout, Tensor inp, int n) {
        pointwise(Pointwise.RELU2_BACKWARD, dinp.at(0), dout.at(0), inp.at(0), n, 0.0f);
    }

    /** out = inp · mask. */
    default void dropoutForward(Tensor out, Tensor inp, Tensor mask, int n) {
        pointwise(Pointwise.MUL, out.at(0), inp.at(0), mask.at(0), n, 0.0f);
    }

    /** dinp += dout · mask. */
    default void dropoutBackward(Tensor dinp, Tensor dout, Tensor mask, int n) {
        pointwise(Pointwise.MUL_ADD, dinp.at(0), dout.at(0), mask.at(0), n, 0.0f);
    }

    /** Σ g² over n elements (gradient clipping). */
    default double sumSquares(Tensor g, int n) {
        return reduce(Reduction.SQUARES, g, null, n);
    }

    // ==== composites: embeddings and layer skipping ===================================================

    /** out (N, C) = the rows of wte (V, C) named by tokens. */
    default void embeddingForward(Tensor out, int[] tokens, Tensor wte, int N, int C, int V) {
        rows(Rows.GATHER, out, wte, tokens, N, C, V);
    }

    /** dwte[tokens[n]] += dout[n] (a token seen twice sums its rows in order). */
    default void embeddingBackward(Tensor dwte, Tensor dout, int[] tokens, int N, int C, int V) {
        rows(Rows.SCATTER_ADD, dout, dwte, tokens, N, C, V);
    }

    /** out (B, T, C) += wpe[pos0 + t]: the learned position table on top of the token embedding. */
    default void positionsForward(Tensor out, Tensor wpe, int B, int T, int C, int pos0, int maxT) {
        checkPositions(T, pos0, maxT);
        int[] index = new int[B * T];
        for (int n = 0; n < B * T; n++) {
            index[n] = pos0 + n % T;
        }
        rows(Rows.GATHER_ADD, out, wpe, index, B * T, C, maxT);
    }

    /** dwpe[pos0 + t] += Σ_b dout[b, t] (the sum over the batch formed first, as the kernel does). */
    default void positionsBackward(Tensor dwpe, Tensor dout, int B, int T, int C, int pos0, int maxT) {
        checkPositions(T, pos0, maxT);
        Tensors.need(dwpe, (long) maxT * C, "dwpe maxT*C");
        sumRows(dwpe, pos0 * C, dout, B, T * C);
    }

    private static void checkPositions(int T, int pos0, int maxT) {
        if (pos0 < 0 || (long) pos0 + T > maxT) {
            throw new IllegalArgumentException("argument pos0 = " + pos0 + ": pos0 + T = " + ((long) pos0 + T)
                    + " must be within maxT = " + maxT + " (the position table's rows)");
        }
    }

    /**
     * Per sample b of B (T rows of C each): out = skip[b] != 0 ? skipped : computed. The layer-skip
     * selection of training (a skipped sample passes through the block unchanged).
     */
    default void selectSamples(Tensor out, Tensor computed, Tensor skipped, int[] skip, int B, int T, int C) {
        checkSkip(skip, B);
        int rows = T * C;
        for (int b = 0; b < B; b++) {
            copy(out, b * rows, skip[b] != 0 ? skipped : computed, b * rows, rows);
        }
    }

    /**
     * The backward of {@link #selectSamples}: dcomputed = rows of dout whose sample was not skipped (others
     * 0, overwritten); dskipped += rows of dout whose sample was skipped.
     */
    default void selectSamplesBackward(Tensor dcomputed, Tensor dskipped, Tensor dout, int[] skip, int B, int T,
                                       int C) {
        checkSkip(skip, B);
        int rows = T * C;
        for (int b = 0; b < B; b++) {
            int at = b * rows;
            if (skip[b] != 0) {
                pointwise(Pointwise.FILL, dcomputed.at(at), null, null, rows, 0.0f);
                pointwise(Pointwise.ADD, dskipped.at(at), dskipped.at(at), dout.at(at), rows, 0.0f);
            } else {
                copy(dcomputed, at, dout, at, rows);
            }
        }
    }

    private static void checkSkip(int[] skip, int B) {
        if (skip == null || skip.length < B) {
            throw new IllegalArgumentException("argument skip (int[]) has length "
                    + (skip == null ? "null" : skip.length) + ", expected at least " + B + " (B)");
        }
    }

    // ==== composites: quantization and the quantized projections ======================================

    /**
     * Ŵ = alpha·ternary(w) over n weights (kernel {@code Quantize.ternaryForward}); returns
     * alpha = max(mean|w|, 1e-6).
     */
    default float ternary(Tensor wHat, Tensor w, int n) {
        float alpha = (float) (reduce(Reduction.ABS, w, null, n) / n);
        if (alpha < 1e-6f) {
            alpha = 1e-6f;
        }
        pointwise(Pointwise.TERNARY, wHat.at(0), w.at(0), null, n, alpha);
        return alpha;
    }

    /** Σ (w − ŵ)² over n elements (the quantization loss of one matrix). */
    default double squaredError(Tensor w, Tensor wHat, int n) {
        return reduce(Reduction.SQUARED_DIFF, w, wHat, n);
    }

    /** dw += scale·2·(w − ŵ). */
    default void squaredErrorBackward(Tensor dw, Tensor w, Tensor wHat, int n, float scale) {
        pointwise(Pointwise.SQUARED_ERROR_BACKWARD, dw.at(0), w.at(0), wHat.at(0), n, scale);
    }

    /** out (N, OC) = inp (N, C) · weight (OC, C)ᵀ + bias; bias may be null. */
    default void matmulForward(Tensor out, Tensor inp, Tensor weight, Tensor bias, int N, int C, int OC) {
        gemm(Gemm.linear(out, inp, weight, bias, N, C, OC));
    }

    /** dbias (OC) += Σ_n dout[n] over N rows of OC: a linear layer's bias gradient. */
    default void biasBackward(Tensor dbias, Tensor dout, int N, int OC) {
        sumRows(dbias, 0, dout, N, OC);
    }

    /**
     * BitLinear (kernel {@code BitLinear.forward}): a.out = act(x̂·Ŵᵀ) for N rows of a.inp, x̂ the per-row
     * quantization of the input, Ŵ the ternary weight; writes the activations backward reads. Returns alpha
     * (1 with full-precision weights).
     */
    default float bitLinearForward(QuantLinear q, int N, LinearParams p, LinearActs a) {
        int C = q.in(), OC = q.out();
        Tensor w = p.weight();
        float alpha = 1.0f;
        if (q.ternary()) {
            alpha = ternary(a.wHat(), w, OC * C);
            w = a.wHat();
        }
        Tensor x = a.inp();
        if (q.actBits() != 0) {
            quantizeActivations(a.xHat(), a.actScale(), x, N, C, q.actBits());
            x = a.xHat();
        }
        if (q.relu2()) {
            gemm(Gemm.linear(a.preact(), x, w, null, N, C, OC));
            relu2Forward(a.out(), a.preact(), N * OC);
        } else {
            gemm(Gemm.linear(a.out(), x, w, null, N, C, OC));
        }
        return alpha;
    }

    /**
     * BitLinear's backward with the straight-through estimator (kernel {@code BitLinear.backward}):
     * accumulates dinp (N, in) and grads.weight from dout (N, out); either may be null when not wanted.
     */
    default void bitLinearBackward(QuantLinear q, int N, LinearParams p, LinearActs a, Tensor dout, Tensor dinp,
                                   LinearParams grads, LinearScratch s) {
        int C = q.in(), OC = q.out();
        Tensor g = dout;
        if (q.relu2()) {
            pointwise(Pointwise.FILL, s.dpreact().at(0), null, null, N * OC, 0.0f);
            relu2Backward(s.dpreact(), dout, a.preact(), N * OC);
            g = s.dpreact();
        }
        // the quantizers are the identity in backward: the products use the x̂ and Ŵ of the forward pass
        Tensor x = q.actBits() != 0 ? a.xHat() : a.inp();
        Tensor w = q.ternary() ? a.wHat() : p.weight();
        if (dinp != null) {
            gemm(Gemm.linearInputGrad(dinp, g, w, N, C, OC));
        }
        if (grads.weight() != null) {
            gemm(Gemm.linearWeightGrad(grads.weight(), g, x, N, C, OC));
        }
    }

    /**
     * H-BitLinear (kernel {@code HBitLinear.forward}): u = LayerNorm(x), z = FWHT(u zero-padded to P)/√P, then
     * the BitLinear tail on z with the (out, P) weight. Returns alpha.
     */
    default float hBitLinearForward(QuantLinear q, int N, LinearParams p, LinearActs a) {
        int C = q.in(), P = q.padded();
        layerNormForward(a.lnOut(), a.ln(), a.inp(), p.norm(), N, C, q.eps());
        if (P > C) {
            pointwise(Pointwise.FILL, a.z().at(0), null, null, N * P, 0.0f);
        }
        copy(a.z().at(0), P, a.lnOut().at(0), C, N, C);
        fwht(a.z(), N, P);
        return bitLinearForward(q.tail(), N, p, a.tail());
    }

    /**
     * H-BitLinear's backward (kernel {@code HBitLinear.backward}): the BitLinear tail's into dz, the FWHT
     * (its own transpose), the padding dropped, then the LayerNorm's. Accumulates dinp, grads.norm and
     * grads.weight (null when not wanted).
     */
    default void hBitLinearBackward(QuantLinear q, int N, LinearParams p, LinearActs a, Tensor dout, Tensor dinp,
                                    LinearParams grads, LinearScratch s) {
        int C = q.in(), P = q.padded();
        pointwise(Pointwise.FILL, s.dz().at(0), null, null, N * P, 0.0f);
        bitLinearBackward(q.tail(), N, p, a.tail(), dout, s.dz(), grads, s);
        fwht(s.dz(), N, P);
        copy(s.dlnOut().at(0), C, s.dz().at(0), P, N, C);
        layerNormBackward(dinp, grads.norm(), s.dlnOut(), a.inp(), p.norm(), a.ln(), N, C);
    }

    // ==== composites: attention =======================================================================

    /**
     * Causal grouped-query attention (kernel {@code Attention.forward}), per (sample, head): scores =
     * scale·Q·Kᵀ (one gemm over the whole (T, T) block), the causal softmax, out = (P∘dropMask)·V. work holds
     * at least {@link AttentionShape#workSize} floats.
     */
    default void attentionForward(AttentionShape s, AttentionActs a, Tensor work) {
        int T = s.T(), HS = s.HS(), group = s.NH() / s.NKV();
        int qld = s.NH() * HS, kvld = s.NKV() * HS;
        Tensors.need(work, (long) T * T, "attention work T*T");
        for (int bh = 0; bh < s.B() * s.NH(); bh++) {
            int b = bh / s.NH(), h = bh % s.NH();
            int qOff = (b * T * s.NH() + h) * HS, kvOff = (b * T * s.NKV() + h / group) * HS, pOff = bh * T * T;
            gemm(new Gemm(T, T, HS, s.scale(), new Mat(a.q(), qOff, qld, false), new Mat(a.k(), kvOff, kvld, true),
                    0.0f, new Mat(a.probs(), pOff, T, false), null));
            softmaxForward(a.probs().at(pOff), T, T);
            Mat weights = new Mat(a.probs(), pOff, T, false);
            if (a.dropMask() != null) {
                pointwise(Pointwise.MUL, work.at(0), a.probs().at(pOff), a.dropMask().at(pOff), T * T, 0.0f);
                weights = Mat.of(work, T);
            }
            gemm(new Gemm(T, HS, T, 1.0f, weights, new Mat(a.v(), kvOff, kvld, false), 0.0f,
                    new Mat(a.out(), qOff, qld, false), null));
        }
    }

    /**
     * Attention's backward (kernel {@code Attention.backward}): accumulates dq, dk, dv from dout. Per sample
     * and KV head, the query heads of its group in order (so dk and dv sum over them in a fixed order):
     * dV += Wᵀ·dO with W = P∘mask, dP = (dO·Vᵀ)∘mask, dS = the softmax's backward of dP, dQ += dS·K,
     * dK += dSᵀ·Q. work holds at least {@link AttentionShape#workSize} floats.
     */
    default void attentionBackward(AttentionShape s, AttentionActs a, Tensor dout, Tensor dq, Tensor dk, Tensor dv,
                                   Tensor work) {
        int T = s.T(), HS = s.HS(), group = s.NH() / s.NKV();
        int qld = s.NH() * HS, kvld = s.NKV() * HS, TT = T * T;
        Tensors.need(work, 2L * TT, "attention work 2*T*T");
        for (int bk = 0; bk < s.B() * s.NKV(); bk++) {
            int b = bk / s.NKV(), kvh = bk % s.NKV();
            int kvOff = (b * T * s.NKV() + kvh) * HS;
            Mat k = new Mat(a.k(), kvOff, kvld, false), v = new Mat(a.v(), kvOff, kvld, false);
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                int qOff = (b * T * s.NH() + h) * HS, pOff = (b * s.NH() + h) * TT;
                Mat dO = new Mat(dout, qOff, qld, false), q = new Mat(a.q(), qOff, qld, false);
                Mat weights = new Mat(a.probs(), pOff, T, false);
                if (a.dropMask() != null) {
                    pointwise(Pointwise.MUL, work.at(TT), a.probs().at(pOff), a.dropMask().at(pOff), TT, 0.0f);
                    weights = new Mat(work, TT, T, false);
                }
                gemm(new Gemm(T, HS, T, 1.0f, transpose(weights), dO, 1.0f, new Mat(dv, kvOff, kvld, false), null));
                gemm(new Gemm(T, T, HS, 1.0f, dO, transpose(v), 0.0f, Mat.of(work, T), null));
                if (a.dropMask() != null) {
                    pointwise(Pointwise.MUL, work.at(0), work.at(0), a.dropMask().at(pOff), TT, 0.0f);
                }
                softmaxBackward(work.at(0), a.probs().at(pOff), T, T, s.scale());
                gemm(new Gemm(T, HS, T, 1.0f, Mat.of(work, T), k, 1.0f, new Mat(dq, qOff, qld, false), null));
                gemm(new Gemm(T, HS, T, 1.0f, Mat.transposeOf(work, T), q, 1.0f, new Mat(dk, kvOff, kvld, false), null));
            }
        }
    }

    private static Mat transpose(Mat m) {
        return new Mat(m.tensor(), m.offset(), m.ld(), !m.transposed());
    }

    // ==== composites: routing =========================================================================

    /** The routing gate (kernel {@code Router.forward}): p = sigmoid(w2·relu(w1·LN(h) + b1) + b2) per row. */
    default void routerForward(RouterShape r, int N, RouterParams p, RouterActs a) {
        int C = r.C(), H = r.H();
        layerNormForward(a.ln(), a.lnStats(), a.h(), p.norm(), N, C, r.eps());
        gemm(Gemm.linear(a.hidden(), a.ln(), p.w1(), p.b1(), N, C, H));
        pointwise(Pointwise.RELU, a.hidden().at(0), a.hidden().at(0), null, N * H, 0.0f);
        gemm(Gemm.linear(a.p(), a.hidden(), p.w2(), p.b2(), N, H, 1));
        pointwise(Pointwise.SIGMOID, a.p().at(0), a.p().at(0), null, N, 0.0f);
    }

    /**
     * The routing gate's backward (kernel {@code Router.backward}): accumulates dh (N, C) and grads from dp (N).
     */
    default void routerBackward(RouterShape r, int N, RouterParams p, RouterActs a, Tensor dp, Tensor dh,
                                RouterParams grads, RouterScratch s) {
        int C = r.C(), H = r.H();
        pointwise(Pointwise.FILL, s.dlogit().at(0), null, null, N, 0.0f);
        pointwise(Pointwise.SIGMOID_BACKWARD, s.dlogit().at(0), dp.at(0), a.p().at(0), N, 0.0f);
        pointwise(Pointwise.FILL, s.dhidden().at(0), null, null, N * H, 0.0f);
        gemm(Gemm.linearInputGrad(s.dhidden(), s.dlogit(), p.w2(), N, H, 1));
        gemm(Gemm.linearWeightGrad(grads.w2(), s.dlogit(), a.hidden(), N, H, 1));
        biasBackward(grads.b2(), s.dlogit(), N, 1);
        pointwise(Pointwise.FILL, s.dpre().at(0), null, null, N * H, 0.0f);
        pointwise(Pointwise.RELU_BACKWARD, s.dpre().at(0), s.dhidden().at(0), a.hidden().at(0), N * H, 0.0f);
        pointwise(Pointwise.FILL, s.dln().at(0), null, null, N * C, 0.0f);
        gemm(Gemm.linearInputGrad(s.dln(), s.dpre(), p.w1(), N, C, H));
        gemm(Gemm.linearWeightGrad(grads.w1(), s.dpre(), a.ln(), N, C, H));
        biasBackward(grads.b1(), s.dpre(), N, H);
        layerNormBackward(dh, grads.norm(), s.dln(), a.h(), p.norm(), a.lnStats(), N, C);
    }

    /**
     * The routing loss over L layers and N tokens (kernel {@code RoutingLoss.forward}): pExit (L, N) is
     * layer-major; writes lbar (N), the expected exit layer per token, and returns the loss. An L×N op of a
     * few thousand elements once per step: it runs on the host, with the reference kernel itself.
     */
    default double routingLossForward(Tensor lbar, Tensor pExit, int L, int N, float target, boolean batchMean) {
        float[] p = new float[L * N], lb = new float[N];
        download(pExit, p);
        double loss = RoutingLoss.forward(lb, p, L, N, target, batchMean);
        upload(lbar, lb);
        return loss;
    }

    /** Accumulates dpExit (L, N) += d(gradScale·loss)/dpExit (kernel {@code RoutingLoss.backward}), on the host. */
    default void routingLossBackward(Tensor dpExit, Tensor pExit, Tensor lbar, int L, int N, float target,
                                     boolean batchMean, float gradScale) {
        float[] p = new float[L * N], lb = new float[N], d = new float[L * N];
        download(pExit, p);
        download(lbar, lb);
        download(dpExit, d);
        RoutingLoss.backward(d, p, lb, L, N, target, batchMean, gradScale);
        upload(dpExit, d);
    }

    // ==== composites: the residual adapter of an early exit ============================================

    /**
     * An early exit's residual adapter (kernel {@code ExitAdapter.forward}): a.ln = LayerNorm(a.h) (saving its
     * statistics), a.out = a.h + a.ln · p.wᵀ for N rows of C, p.w (C, C).
     */
    default void exitAdapterForward(int N, int C, float eps, AdapterParams p, AdapterActs a) {
        if (a.out() == a.h()) {
            throw new IllegalArgumentException("exitAdapterForward: out must not be h (" + a.h().name() + ")");
        }
        layerNormForward(a.ln(), a.lnStats(), a.h(), p.norm(), N, C, eps);
        copy(a.out(), a.h(), N * C);
        gemm(new Gemm(N, C, C, 1.0f, Mat.of(a.ln(), C), Mat.transposeOf(p.w(), C), 1.0f, Mat.of(a.out(), C), null));
    }

    /**
     * The adapter's backward (kernel {@code ExitAdapter.backward}): accumulates dh (the residual, then the
     * LayerNorm's input gradient) and grads from dout (N, C); dln (N, C) is scratch, overwritten.
     */
    default void exitAdapterBackward(int N, int C, AdapterParams p, AdapterActs a, Tensor dout, Tensor dh,
                                     AdapterParams grads, Tensor dln) {
        pointwise(Pointwise.ADD, dh.at(0), dh.at(0), dout.at(0), N * C, 0.0f);
        pointwise(Pointwise.FILL, dln.at(0), null, null, N * C, 0.0f);
        gemm(Gemm.linearInputGrad(dln, dout, p.w(), N, C, C));
        gemm(Gemm.linearWeightGrad(grads.w(), dout, a.ln(), N, C, C));
        layerNormBackward(dh, grads.norm(), dln, a.h(), p.norm(), a.lnStats(), N, C);
    }

    // ==== composites: the low-rank head of an early exit ===============================================

    /**
     * An early exit's low-rank head (kernel {@code LowRankHead.forward}): out (V, C) = w + up (V, r) · down
     * (r, C), the product summed over the rank, then added to w.
     */
    default void lowRankHeadForward(Tensor out, Tensor w, Tensor up, Tensor down, int V, int C, int r) {
        copy(out, w, V * C);
        gemm(new Gemm(V, C, r, 1.0f, Mat.of(up, r), Mat.of(down, C), 1.0f, Mat.of(out, C), null));
    }

    /**
     * Its backward (kernel {@code LowRankHead.backward}): from dout (V, C), the gradient of out, accumulates
     * dup += dout · downᵀ and ddown += upᵀ · dout (w's gradient is dout itself, for the caller to add).
     */
    default void lowRankHeadBackward(Tensor dup, Tensor ddown, Tensor dout, Tensor up, Tensor down, int V, int C,
                                     int r) {
        gemm(new Gemm(V, r, C, 1.0f, Mat.of(dout, C), Mat.transposeOf(down, C), 1.0f, Mat.of(dup, r), null));
        gemm(new Gemm(r, C, V, 1.0f, Mat.transposeOf(up, r), Mat.of(dout, C), 1.0f, Mat.of(ddown, C), null));
    }

    // ==== composites: the LM head and its loss ========================================================

    /**
     * Cross-entropy of x (N, C) · head.weight (V, C)ᵀ against targets (−1 = ignored), over chunks of at most
     * head.chunkRows rows so the logits of all rows never exist at once. Returns the sum of the rows' losses
     * (added row by row, in order). If dx is not null, accumulates dx += gradScale·∂loss/∂x and, unless
     * head.grad is null, head.grad += gradScale·∂loss/∂head.
     */
    default double headLoss(LmHead head, Tensor x, int[] targets, int N, float gradScale, Tensor dx) {
        int C = head.C(), V = head.V();
        checkTargets(targets, N, V);
        int chunk = Math.min(head.chunkRows(), N);
        Tensors.need(head.logits(), (long) chunk * V, "logits min(chunkRows, N)*V");
        boolean grad = dx != null;
        double[] rowLoss = new double[chunk];
        double loss = 0.0;
        for (int r0 = 0; r0 < N; r0 += chunk) {
            int R = Math.min(chunk, N - r0);
            Mat xs = new Mat(x, r0 * C, C, false);
            gemm(new Gemm(R, V, C, 1.0f, xs, Mat.transposeOf(head.weight(), C), 0.0f, Mat.of(head.logits(), V), null));
            crossEntropy(head.logits(), Arrays.copyOfRange(targets, r0, r0 + R), R, V, gradScale, grad, rowLoss);
            for (int r = 0; r < R; r++) {
                loss += rowLoss[r];
            }
            if (grad) {
                headBackward(head, xs, R, new Mat(dx, r0 * C, C, false));
            }
        }
        return loss;
    }

    /**
     * One chunk of {@link #headLoss}'s backward, from the chunk's logit gradient in head.logits (R, V):
     * dx (R, C) += dlogits · head.weight and, unless head.grad is null, head.grad += dlogitsᵀ · xs.
     */
    default void headBackward(LmHead head, Mat xs, int R, Mat dx) {
        int C = head.C(), V = head.V();
        gemm(new Gemm(R, C, V, 1.0f, Mat.of(head.logits(), V), Mat.of(head.weight(), C), 1.0f, dx, null));
        if (head.grad() != null) {
            gemm(new Gemm(V, C, R, 1.0f, Mat.transposeOf(head.logits(), V), xs, 1.0f, Mat.of(head.grad(), C), null));
        }
    }

    /** Every target is −1 (ignored) or a token id in [0, V); checked before any work. */
    private static void checkTargets(int[] targets, int N, int V) {
        if (targets == null || targets.length < N) {
            throw new IllegalArgumentException("argument targets (int[]) has length "
                    + (targets == null ? "null" : targets.length) + ", expected at least " + N + " (N)");
        }
        for (int r = 0; r < N; r++) {
            if (targets[r] < -1 || targets[r] >= V) {
                throw new IllegalArgumentException("argument targets[" + r + "] = " + targets[r]
                        + ": must be -1 (ignored) or in [0, V) with V = " + V);
            }
        }
    }

    // ==== composites: the optimizer ===================================================================

    // adamW is a primitive; gradient clipping is sumSquares, GradClip.clipFactor on the host, then scale.
}
