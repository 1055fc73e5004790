package bitskip.engine;

/**
 * The operations the BitSkip model runs on, one method per op of {@code kernels-java}, on tensors this
 * backend owns. The scalar reference ({@link JavaBackend}) defines what each op computes by calling the
 * kernel of the same name; a fast backend must agree with it within the tolerances its tests state.
 *
 * <p>Conventions are the kernels' (see {@code kernels-java/README.md}): forward ops overwrite their
 * outputs, backward ops accumulate into gradients, dimensions are named (N rows, C channels, ...), and
 * tensors may be longer than the leading elements an op uses. Integer inputs (token ids, targets, masks)
 * stay on the host as {@code int[]}. Scalars that the training loop logs come back as {@code double}.
 */
public interface Backend extends AutoCloseable {

    /** Short name used on the command line ("java", "cpu", "opencl"). */
    String name();

    /** One line that says what runs where ("scalar Java reference, 1 thread"). */
    String description();

    // ---- memory -------------------------------------------------------------------------------------

    /** A zero-filled tensor of n floats. */
    Tensor alloc(String name, int n);

    void zero(Tensor t);

    void upload(Tensor dst, float[] src);

    void download(Tensor src, float[] dst);

    /** dst[0..n) = src[0..n). */
    void copy(Tensor dst, Tensor src, int n);

    /** dst[dstOffset..dstOffset+n) = src[srcOffset..srcOffset+n). */
    void copy(Tensor dst, int dstOffset, Tensor src, int srcOffset, int n);

    // ---- embedding ---------------------------------------------------------------------------------

    void embeddingForward(Tensor out, int[] tokens, Tensor wte, int N, int C, int V);

    void embeddingBackward(Tensor dwte, Tensor dout, int[] tokens, int N, int C, int V);

    void positionsForward(Tensor out, Tensor wpe, int B, int T, int C, int pos0, int maxT);

    void positionsBackward(Tensor dwpe, Tensor dout, int B, int T, int C, int pos0, int maxT);

    // ---- normalization, linear, pointwise ------------------------------------------------------------

    /** weight and bias may be null: a parameter-free LayerNorm. */
    void layerNormForward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor weight, Tensor bias,
                          int N, int C, float eps);

    void layerNormBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight,
                           Tensor mean, Tensor rstd, int N, int C);

    /** out (N,OC) = inp (N,C) · weight (OC,C)ᵀ + bias; bias may be null. */
    void matmulForward(Tensor out, Tensor inp, Tensor weight, Tensor bias, int N, int C, int OC);

    /** Accumulates the gradients that are not null. */
    void matmulBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight,
                        int N, int C, int OC);

    void relu2Forward(Tensor out, Tensor inp, int n);

    void relu2Backward(Tensor dinp, Tensor dout, Tensor inp, int n);

    /** out = a + b. */
    void add(Tensor out, Tensor a, Tensor b, int n);

    /** dst += src. */
    void accumulate(Tensor dst, Tensor src, int n);

    /** t *= factor. */
    void scale(Tensor t, int n, float factor);

    // ---- dropout (counter-based: the same seed gives the same mask on every backend) -----------------

    void dropoutMask(Tensor mask, int n, float p, long seed, long offset);

    /** out = inp · mask. */
    void dropoutForward(Tensor out, Tensor inp, Tensor mask, int n);

    /** dinp += dout · mask. */
    void dropoutBackward(Tensor dinp, Tensor dout, Tensor mask, int n);

    // ---- layer skipping --------------------------------------------------------------------------------

    /**
     * Per sample b of B (T rows of C each): out = skip[b] != 0 ? skipped : computed. The layer-skip
     * selection of training (a skipped sample passes through the block unchanged).
     */
    void selectSamples(Tensor out, Tensor computed, Tensor skipped, int[] skip, int B, int T, int C);

    /**
     * The backward of {@link #selectSamples}: dcomputed = rows of dout whose sample was not skipped (others
     * 0, overwritten); dskipped += rows of dout whose sample was skipped.
     */
    void selectSamplesBackward(Tensor dcomputed, Tensor dskipped, Tensor dout, int[] skip, int B, int T, int C);

    // ---- quantization and the Hadamard transform -------------------------------------------------------

    /** Ŵ = alpha·ternary(w) over n weights; returns alpha. codes may be null. */
    float ternaryForward(Tensor wHat, byte[] codes, Tensor w, int n);

    /** Σ (w − ŵ)² over n elements. */
    double squaredError(Tensor w, Tensor wHat, int n);

    /** dw += scale·2·(w − ŵ). */
    void squaredErrorBackward(Tensor dw, Tensor w, Tensor wHat, int n, float scale);

    // ---- quantized projections (kernels BitLinear and HBitLinear; shapes and switches as there) -------

    /** Returns alpha. */
    float bitLinearForward(Tensor out, Tensor preact, Tensor xHat, Tensor actScale, Tensor wHat, Tensor inp,
                           Tensor weight, int N, int C, int OC, int actBits, boolean ternary, boolean relu2);

    void bitLinearBackward(Tensor dinp, Tensor dweight, Tensor dpreact, Tensor dout, Tensor preact, Tensor xHat,
                           Tensor wHat, Tensor inp, Tensor weight, int N, int C, int OC, int actBits,
                           boolean ternary, boolean relu2);

    /** Returns alpha. */
    float hBitLinearForward(Tensor out, Tensor preact, Tensor zHat, Tensor actScale, Tensor wHat, Tensor z,
                            Tensor lnOut, Tensor lnMean, Tensor lnRstd, Tensor inp, Tensor lnWeight,
                            Tensor lnBias, Tensor weight, int N, int C, int P, int OC, float eps, int actBits,
                            boolean ternary, boolean relu2);

    void hBitLinearBackward(Tensor dinp, Tensor dlnWeight, Tensor dlnBias, Tensor dweight, Tensor dpreact,
                            Tensor dz, Tensor dlnOut, Tensor dout, Tensor preact, Tensor zHat, Tensor wHat,
                            Tensor z, Tensor lnMean, Tensor lnRstd, Tensor inp, Tensor lnWeight, Tensor weight,
                            int N, int C, int P, int OC, int actBits, boolean ternary, boolean relu2);

    // ---- attention ------------------------------------------------------------------------------------

    void ropeForward(Tensor out, Tensor inp, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0);

    void ropeBackward(Tensor dinp, Tensor dout, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0);

    /** dropMask may be null. */
    void attentionForward(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor dropMask,
                          int B, int T, int NH, int NKV, int HS);

    void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor scratch, Tensor dout, Tensor q, Tensor k,
                           Tensor v, Tensor probs, Tensor dropMask, int B, int T, int NH, int NKV, int HS);

    // ---- routing -------------------------------------------------------------------------------------

    /** The routing gate (kernel Router): p (N) from h (N, C); saves ln, lnMean, lnRstd, hidden. */
    void routerForward(Tensor p, Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h,
                       Tensor lnWeight, Tensor lnBias, Tensor w1, Tensor b1, Tensor w2, Tensor b2,
                       int N, int C, int H, float eps);

    void routerBackward(Tensor dh, Tensor dlnWeight, Tensor dlnBias, Tensor dw1, Tensor db1, Tensor dw2,
                        Tensor db2, Tensor dlogit, Tensor dhidden, Tensor dpre, Tensor dln, Tensor dp, Tensor p,
                        Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h, Tensor lnWeight,
                        Tensor w1, Tensor w2, int N, int C, int H);

    /** pExit is (L, N) layer-major; writes lbar (N); returns the routing loss. */
    double routingLossForward(Tensor lbar, Tensor pExit, int L, int N, float target, boolean batchMean);

    void routingLossBackward(Tensor dpExit, Tensor pExit, Tensor lbar, int L, int N, float target,
                             boolean batchMean, float gradScale);

    // ---- the LM head and its loss --------------------------------------------------------------------

    /**
     * Cross-entropy of {@code x (N,C) · head (V,C)ᵀ} against targets, computed over chunks of at most
     * {@code chunkRows} rows so the logits of all rows never exist at once. Returns the sum of the losses
     * of rows whose target is not -1. If dx is not null, accumulates dx += gradScale·∂loss/∂x and
     * dhead += gradScale·∂loss/∂head. logits and dlogits are scratch of at least chunkRows·V floats.
     */
    double headLoss(Tensor x, Tensor head, int[] targets, int N, int C, int V, float gradScale, Tensor dx,
                    Tensor dhead, Tensor logits, Tensor dlogits, int chunkRows);

    // ---- optimizer -------------------------------------------------------------------------------------

    double sumSquares(Tensor g, int n);

    void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, float lr, float beta1, float beta2,
               float eps, float weightDecay, int step);

    /** Waits for queued work (a no-op where ops run synchronously). */
    default void sync() {}

    @Override
    default void close() {}
}
