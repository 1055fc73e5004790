package bitskip.engine.cpu;

import bitskip.engine.AdamStep;
import bitskip.engine.AttentionActs;
import bitskip.engine.AttentionShape;
import bitskip.engine.Backend;
import bitskip.engine.Gemm;
import bitskip.engine.Heads;
import bitskip.engine.LmHead;
import bitskip.engine.Norm;
import bitskip.engine.NormStats;
import bitskip.engine.Pointwise;
import bitskip.engine.Precision;
import bitskip.engine.Reduction;
import bitskip.engine.Rows;
import bitskip.engine.Span;
import bitskip.engine.Tensor;
import bitskip.kernels.Check;
import bitskip.parallel.Pool;

/**
 * The fast CPU backend: float GEMMs through OpenBLAS, everything else multi-threaded Java with the Vector API.
 * A facade over the op families, one package-private class each: {@link CpuMemory} (tensors, copies),
 * {@link CpuElementwise} (the pointwise ops, dropout masks, AdamW), {@link CpuReductions} (sums, embedding
 * rows), {@link CpuLinear} (sgemm), {@link CpuNorms} (LayerNorm, FWHT, the activation quantizer),
 * {@link CpuAttention} (RoPE, causal softmax), {@link CpuLosses} (cross-entropy rows). The layers are
 * {@link Backend}'s compositions of these; nothing here re-implements one.
 *
 * <p><b>Storage.</b> Tensors live off the Java heap ({@link CpuTensor}: JavaCPP memory, a direct ByteBuffer
 * view for Java code). Measured on the 512×128·(50257×128)ᵀ head GEMM (2 cores): heap {@code float[]} through
 * the {@code float[]} overload of {@code cblas_sgemm} ran at 56–70 GFLOP/s because JavaCPP copies Java arrays
 * in and out, off-heap {@code FloatPointer} at 180–195 GFLOP/s with no copy; Vector API loads from a direct
 * ByteBuffer measured as fast as from an array. Row offsets (the head's row chunks, attention heads) are
 * pointer offsets, never copies. {@link #close} frees every tensor.
 *
 * <p><b>Threads.</b> {@code threads} (constructor, else system property {@code bitskip.threads}, else the
 * available processors; never more than those) is the size of this backend's {@link Pool}, which runs
 * everything, the GEMMs too: {@link CpuLinear} cuts each product into blocks of single-threaded OpenBLAS calls
 * (OpenBLAS's own threads stay off), so that under contention a thread takes over a descheduled one's
 * blocks. Every non-GEMM op splits its rows (or columns, or fixed-size blocks) into chunks;
 * each chunk owns its outputs, so there are no races and no atomics, and every reduction has a fixed order:
 * results are bit-identical run to run, and but for OpenBLAS's sums independent of the thread count.
 *
 * <p><b>Vector switch.</b> {@code vector} (constructor, else system property {@code bitskip.cpu.vector},
 * default true) selects the Vector API loops; false selects plain scalar loops that follow the kernels'
 * operation order. Both paths are tested against {@code JavaBackend}.
 *
 * <p><b>Exactness against the reference</b> (same inputs): the pointwise ops, dropout, AdamW, the ternary
 * quantizer (alpha summed sequentially in double as the kernel does), the activation quantizer, embeddings,
 * RoPE and the FWHT are bit-exact on both paths. GEMMs, LayerNorm (vector sums), the softmax and cross-entropy
 * (vector exp in float, blocked sums) and the double reductions (another summation order) agree within the
 * tolerances the equivalence harness states.
 *
 * <p>An instance is not thread-safe (one training loop drives it).
 */
public final class CpuBackend implements Backend {

    public static final String THREADS_PROPERTY = "bitskip.threads";
    public static final String VECTOR_PROPERTY = "bitskip.cpu.vector";

    private final CpuContext cx;
    private final CpuMemory memory;
    private final CpuElementwise elementwise;
    private final CpuReductions reductions;
    private final CpuLinear linear;
    private final CpuNorms norms;
    private final CpuAttention attention;
    private final CpuLosses losses;
    /** Non-null in precision bf16. */
    private CpuBf16 bf16;

    public CpuBackend() {
        this(Integer.getInteger(THREADS_PROPERTY, Pool.cores()),
                !"false".equalsIgnoreCase(System.getProperty(VECTOR_PROPERTY, "true")));
    }

    public CpuBackend(int threads, boolean vector) {
        if (!available()) {
            throw new IllegalStateException("cpu backend: " + unavailableReason());
        }
        Check.arg(threads >= 1, "threads", threads, "must be >= 1");
        this.cx = new CpuContext(new Pool(threads), vector);
        this.memory = new CpuMemory(cx);
        this.elementwise = new CpuElementwise(cx);
        this.reductions = new CpuReductions(cx);
        this.linear = new CpuLinear(cx, memory);
        this.norms = new CpuNorms(cx);
        this.attention = new CpuAttention(cx, memory);
        this.losses = new CpuLosses(cx);
    }

    /** Why precision bf16 cannot run in this process (no bf16 instructions, no oneDNN, OMP_NUM_THREADS), or null. */
    public static String bf16UnavailableReason() {
        return available() ? Dnnl.bf16UnavailableReason() : unavailableReason();
    }

    /** Whether OpenBLAS and its JNI bridge load on this machine. */
    public static boolean available() {
        return Blas.loadError() == null;
    }

    /** Why {@link #available} is false (null when it is true). */
    public static String unavailableReason() {
        Throwable t = Blas.loadError();
        return t == null ? null : "OpenBLAS (org.bytedeco:openblas, native classifier for " + System.getProperty("os.name")
                + "/" + System.getProperty("os.arch") + ") could not be loaded: " + t;
    }

    /** The threads this backend runs on (the requested count, at most the available processors). */
    public int threads() {
        return cx.threads;
    }

    public boolean vector() {
        return cx.vector;
    }

    @Override
    public String name() {
        return "cpu";
    }

    /**
     * fp32: OpenBLAS sgemm. bf16: oneDNN bf16 products (float32 accumulation and results), refused with the reason
     * where this process cannot run them (no bf16 instructions, oneDNN missing, OMP_NUM_THREADS other than 1).
     */
    @Override
    public void usePrecision(Precision p) {
        if (p == precision()) {
            return;
        }
        if (p == Precision.BF16) {
            String why = Dnnl.bf16UnavailableReason();
            if (why != null) {
                throw new IllegalArgumentException("precision bf16 on the cpu backend: " + why);
            }
            bf16 = new CpuBf16(cx);
            linear.useBf16(bf16);
        } else {
            linear.useBf16(null);
            bf16.close();
            bf16 = null;
        }
    }

    @Override
    public Precision precision() {
        return bf16 == null ? Precision.FP32 : Precision.BF16;
    }

    /** In bf16 the head's weight is converted once for all of its chunks' products. */
    @Override
    public double headLoss(LmHead head, Tensor x, int[] targets, int N, float gradScale, Tensor dx) {
        if (bf16 == null) {
            return Backend.super.headLoss(head, x, targets, N, gradScale, dx);
        }
        CpuTensor w = CpuTensor.of(head.weight());
        bf16.pin(w, w.size());
        try {
            return Backend.super.headLoss(head, x, targets, N, gradScale, dx);
        } finally {
            bf16.unpin(w);
        }
    }

    /** In bf16 the chunk's logit gradient is converted once for both of its products. */
    @Override
    public void headBackward(LmHead head, bitskip.engine.Mat xs, int R, bitskip.engine.Mat dx) {
        if (bf16 == null) {
            Backend.super.headBackward(head, xs, R, dx);
            return;
        }
        CpuTensor logits = CpuTensor.of(head.logits());
        bf16.pin(logits, R * head.V());
        try {
            Backend.super.headBackward(head, xs, R, dx);
        } finally {
            bf16.unpin(logits);
        }
    }

    @Override
    public String description() {
        String products = bf16 == null ? "OpenBLAS sgemm (" + Blas.config() + ")"
                + (Blas.ONEDNN_LONG_K ? ", oneDNN sgemm for products cut along a long K (the LM head's dX)" : "")
                : "oneDNN bf16 products (" + Dnnl.implementation(256, 256, 256) + ", float32 accumulation)";
        return "CPU: " + products + " + " + (cx.vector ? "Vector API " + Vec.S : "scalar Java")
                + ", " + cx.threads + " thread" + (cx.threads == 1 ? "" : "s") + ", off-heap tensors";
    }

    /** Stops the pool and frees every tensor of this backend. */
    @Override
    public void close() {
        if (bf16 != null) {
            bf16.close();
        }
        cx.pool.close();
        memory.closeAll();
    }

    // ---- primitives, by family ------------------------------------------------------------------------

    @Override
    public Tensor alloc(String name, int n) {
        return memory.alloc(name, n);
    }

    @Override
    public void upload(Tensor dst, float[] src) {
        memory.upload(dst, src);
    }

    @Override
    public void download(Tensor src, float[] dst) {
        memory.download(src, dst);
    }

    @Override
    public void copy(Span dst, int dstStride, Span src, int srcStride, int rows, int cols) {
        memory.copy(dst, dstStride, src, srcStride, rows, cols);
    }

    @Override
    public void pointwise(Pointwise op, Span out, Span a, Span b, int n, float s) {
        elementwise.pointwise(op, out, a, b, n, s);
    }

    @Override
    public void dropoutMask(Tensor mask, int n, float p, long seed, long offset) {
        elementwise.dropoutMask(mask, n, p, seed, offset);
    }

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, AdamStep step) {
        elementwise.adamW(param, grad, m, v, n, step);
    }

    @Override
    public double reduce(Reduction r, Tensor a, Tensor b, int n) {
        return reductions.reduce(r, a, b, n);
    }

    @Override
    public void sumRows(Tensor dst, int dstOffset, Tensor src, int rows, int cols) {
        reductions.sumRows(dst, dstOffset, src, rows, cols);
    }

    @Override
    public void rows(Rows op, Tensor dense, Tensor table, int[] index, int N, int C, int tableRows) {
        reductions.rows(op, dense, table, index, N, C, tableRows);
    }

    @Override
    public void gemm(Gemm g) {
        linear.gemm(g);
    }

    @Override
    public void layerNormForward(Tensor out, NormStats saved, Tensor inp, Norm params, int N, int C, float eps) {
        norms.layerNormForward(out, saved, inp, params, N, C, eps);
    }

    @Override
    public void layerNormBackward(Tensor dinp, Norm grads, Tensor dout, Tensor inp, Norm params, NormStats saved,
                                  int N, int C) {
        norms.layerNormBackward(dinp, grads, dout, inp, params, saved, N, C);
    }

    @Override
    public void fwht(Tensor x, int N, int P) {
        norms.fwht(x, N, P);
    }

    @Override
    public void quantizeActivations(Tensor out, Tensor scale, Tensor inp, int N, int C, int bits) {
        norms.quantizeActivations(out, scale, inp, N, C, bits);
    }

    @Override
    public void rope(Tensor out, Tensor inp, Tensor cos, Tensor sin, Heads shape, int pos0, boolean backward) {
        attention.rope(out, inp, cos, sin, shape, pos0, backward);
    }

    /** In float32, each (sample, head)'s products and softmax on one thread (CpuAttention.forward); same operations. */
    @Override
    public void attentionForward(AttentionShape s, AttentionActs a, Tensor work) {
        if (linear.bf16()) {
            Backend.super.attentionForward(s, a, work);
            return;
        }
        attention.forward(linear, s, a);
    }

    @Override
    public void attentionBackward(AttentionShape s, AttentionActs a, Tensor dout, Tensor dq, Tensor dk, Tensor dv, Tensor work) {
        if (linear.bf16()) {
            Backend.super.attentionBackward(s, a, dout, dq, dk, dv, work);
            return;
        }
        attention.backward(linear, s, a, dout, dq, dk, dv);
    }

    @Override
    public void softmaxForward(Span x, int rows, int T) {
        attention.softmaxForward(x, rows, T);
    }

    @Override
    public void softmaxBackward(Span d, Span p, int rows, int T, float scale) {
        attention.softmaxBackward(d, p, rows, T, scale);
    }

    @Override
    public void crossEntropy(Tensor logits, int[] targets, int R, int V, float gradScale, boolean grad,
                             double[] rowLoss) {
        losses.crossEntropy(logits, targets, R, V, gradScale, grad, rowLoss);
    }

    // ---- composites kept in their historical order ----------------------------------------------------

    /**
     * The bias gradient row by row into dbias (the order this backend has always used; Backend's default
     * forms each column's sum first, as the reference): training runs reproduce bit for bit across versions.
     */
    @Override
    public void biasBackward(Tensor dbias, Tensor dout, int N, int OC) {
        reductions.addRowsInto(dbias, dout, N, OC);
    }
}
