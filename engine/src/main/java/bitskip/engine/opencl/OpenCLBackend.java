package bitskip.engine.opencl;

import static org.jocl.CL.*;

import bitskip.engine.AdamStep;
import bitskip.engine.AttentionActs;
import bitskip.engine.AttentionShape;
import bitskip.engine.Backend;
import bitskip.engine.Gemm;
import bitskip.engine.Heads;
import bitskip.engine.Mat;
import bitskip.engine.Norm;
import bitskip.engine.NormStats;
import bitskip.engine.Pointwise;
import bitskip.engine.Reduction;
import bitskip.engine.Rows;
import bitskip.engine.Span;
import bitskip.engine.Tensor;
import bitskip.engine.Tensors;
import org.jocl.Pointer;
import org.jocl.cl_mem;

/**
 * The OpenCL backend (JOCL): every tensor lives on one device for the whole run ({@link OpenCLMemory}),
 * every primitive is one kernel of {@code bitskip/opencl/bitskip.cl} on one in-order queue
 * ({@link OpenCLQueue}), and nothing comes back to the host inside a step except what the interface returns
 * on the host (whole-tensor sums, cross-entropy row losses). The layers are {@link Backend}'s compositions;
 * attention alone is overridden, by fused kernels (below).
 *
 * <p>The kernels translate {@code kernels-java} one to one. Element-wise ops, LayerNorm, the quantizer, the
 * FWHT, RoPE, dropout masks, the softmax rows, AdamW and the GEMM (same summation order, FP_CONTRACT off,
 * correctly rounded / and sqrt) reproduce the reference bit for bit when the device has fp64 (the
 * reference's few double expressions are then evaluated in double). Whole-tensor sums run in a fixed tree
 * order: deterministic, but not the reference's sequential order, so they agree to a relative 1e-6.
 */
public final class OpenCLBackend implements Backend {
    private static final int PARTIALS = 64;
    private static final int TS = 16;

    private final OpenCLRuntime rt;
    private final OpenCLMemory memory;
    private final OpenCLQueue queue;
    private final cl_mem sums, partials;
    private cl_mem rowLossBuf, dscore;
    private long rowLossBytes, dscoreBytes;
    private boolean closed;

    /** The device chosen by -Dbitskip.device / BITSKIP_DEVICE, else the first GPU, else the first device. */
    public OpenCLBackend() {
        this(OpenCLDevices.select(null));
    }

    /** The device "P:D". */
    public OpenCLBackend(String deviceSpec) {
        this(OpenCLDevices.select(deviceSpec));
    }

    public OpenCLBackend(OpenCLDevices.Device device) {
        this(device, true);
    }

    /** allowFp64 false compiles the float-only kernels (double-float accumulators) even on an fp64 device. */
    public OpenCLBackend(OpenCLDevices.Device device, boolean allowFp64) {
        this.rt = OpenCLRuntime.of(device, allowFp64);
        this.memory = new OpenCLMemory(rt);
        this.queue = new OpenCLQueue(rt, memory);
        memory.attach(queue);
        sums = queue.raw(8);
        partials = queue.raw(PARTIALS * 8);
    }

    public OpenCLDevices.Device device() {
        return rt.device;
    }

    /** Whether the reductions and the reference's double expressions run in double on this device. */
    public boolean fp64() {
        return rt.fp64;
    }

    @Override
    public String name() {
        return "opencl";
    }

    @Override
    public String description() {
        OpenCLDevices.Device d = rt.device;
        return "OpenCL " + d.id() + " " + d.name() + " (" + d.platformName() + ", " + d.computeUnits() + " CU, "
                + (rt.fp64 ? "fp64 accumulators" : "double-float accumulators") + ")";
    }

    /**
     * Lowers the bytes this backend may allocate in all. For tests: exhausting the real global memory of a CPU
     * device (PoCL) would fill the host's RAM, so the out-of-memory path is tested against a small budget.
     */
    void limitMemory(long bytes) {
        memory.limitMemory(bytes);
    }

    /** Bytes of tensors allocated by this backend and not yet closed. */
    public long allocatedBytes() {
        return memory.allocatedBytes();
    }

    // ---- memory -------------------------------------------------------------------------------------

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

    // ---- element-wise, sums, rows ---------------------------------------------------------------------

    @Override
    public void pointwise(Pointwise op, Span out, Span a, Span b, int n, float s) {
        positive("n", n);
        out.need(n, "out n");
        if (op.readsA()) {
            a.need(n, "a n");
        }
        if (op.readsB()) {
            b.need(n, "b n");
        }
        queue.run("pointwise", n, op.ordinal(), out.tensor(), out.offset(), op.readsA() ? a.tensor() : null,
                op.readsA() ? a.offset() : 0, op.readsB() ? b.tensor() : null, op.readsB() ? b.offset() : 0, n, s);
    }

    /** Partial sums over a fixed grid, then one work-group in a fixed order; the (hi, lo) pair read back. */
    @Override
    public double reduce(Reduction r, Tensor a, Tensor b, int n) {
        positive("n", n);
        Tensors.need(a, n, "a n");
        if (r == Reduction.SQUARED_DIFF) {
            Tensors.need(b, n, "b n");
        }
        int groups = (int) Math.max(1, Math.min(PARTIALS, (n + (long) rt.rwg - 1) / rt.rwg));
        queue.launch("reduce_partial", new long[] {(long) groups * rt.rwg}, new long[] {rt.rwg}, r.ordinal(), a,
                r == Reduction.SQUARED_DIFF ? b : null, n, partials);
        queue.launch("reduce_final", new long[] {rt.rwg}, new long[] {rt.rwg}, partials, groups, sums);
        float[] v = new float[2];
        clEnqueueReadBuffer(rt.queue, sums, CL_TRUE, 0, 8, Pointer.to(v), 0, null, null);
        return (double) v[0] + (double) v[1];
    }

    @Override
    public void sumRows(Tensor dst, int dstOffset, Tensor src, int rows, int cols) {
        positive("rows", rows, "cols", cols);
        Tensors.need(dst, (long) dstOffset + cols, "dstOffset + cols");
        Tensors.need(src, (long) rows * cols, "rows*cols");
        queue.run("sum_rows", cols, dst, dstOffset, src, rows, cols);
    }

    @Override
    public void rows(Rows op, Tensor dense, Tensor table, int[] index, int N, int C, int tableRows) {
        positive("N", N, "C", C, "tableRows", tableRows);
        Tensors.need(dense, (long) N * C, "dense N*C");
        Tensors.need(table, (long) tableRows * C, "table tableRows*C");
        Tensors.needIndices(index, N, tableRows, "index");
        cl_mem idx = queue.ints(index);
        if (op == Rows.SCATTER_ADD) {
            queue.run("rows_scatter_add", C, table, dense, idx, N, C);
        } else {
            queue.run("rows_gather", (long) N * C, dense, table, idx, N, C, op == Rows.GATHER_ADD);
        }
        clReleaseMemObject(idx);
    }

    @Override
    public void dropoutMask(Tensor mask, int n, float p, long seed, long offset) {
        positive("n", n);
        Tensors.need(mask, n, "mask n");
        if (!(p >= 0.0f && p < 1.0f)) {
            throw new IllegalArgumentException("argument p = " + p + ": dropout probability must be in [0, 1)");
        }
        queue.run("dropout_mask", n, mask, n, p, 1.0f / (1.0f - p), seed, offset);
    }

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, AdamStep s) {
        positive("n", n);
        for (Tensor t : new Tensor[] {param, grad, m, v}) {
            Tensors.need(t, n, "n");
        }
        queue.run("adamw", n, param, grad, m, v, n, s.decay(), s.lerpWeight(), s.beta2(), s.oneMinusBeta2(),
                s.bc2Sqrt(), s.negStepSize(), s.eps());
    }

    // ---- linear algebra -------------------------------------------------------------------------------

    /** One tiled kernel: element strides per operand, k summed in order (the reference's order). */
    @Override
    public void gemm(Gemm g) {
        Mat a = g.a(), b = g.b(), c = g.c();
        queue.launch("gemm", new long[] {OpenCLQueue.roundUp(g.M(), TS), OpenCLQueue.roundUp(g.N(), TS)},
                new long[] {TS, TS}, g.M(), g.N(), g.K(), a.tensor(), a.offset(), a.rowStride(), a.colStride(),
                b.tensor(), b.offset(), b.rowStride(), b.colStride(), c.tensor(), c.offset(), c.ld(), g.bias(),
                g.bias() != null, g.alpha(), g.beta());
    }

    // ---- rows: LayerNorm, quantizer, FWHT, RoPE, softmax, cross-entropy --------------------------------

    @Override
    public void layerNormForward(Tensor out, NormStats saved, Tensor inp, Norm params, int N, int C, float eps) {
        positive("N", N, "C", C);
        Tensors.need(out, (long) N * C, "out N*C");
        Tensors.need(inp, (long) N * C, "inp N*C");
        Tensors.need(saved.mean(), N, "mean N");
        Tensors.need(saved.rstd(), N, "rstd N");
        queue.run("layernorm_forward", N, out, saved.mean(), saved.rstd(), inp, params.weight(), params.bias(),
                params.affine(), N, C, eps);
    }

    @Override
    public void layerNormBackward(Tensor dinp, Norm grads, Tensor dout, Tensor inp, Norm params, NormStats saved,
                                  int N, int C) {
        positive("N", N, "C", C);
        Tensors.need(dinp, (long) N * C, "dinp N*C");
        Tensors.need(dout, (long) N * C, "dout N*C");
        queue.run("layernorm_backward_inp", N, dinp, dout, inp, params.weight(), params.affine(), saved.mean(),
                saved.rstd(), N, C);
        if (params.affine()) {
            Tensors.need(grads.weight(), C, "dweight C");
            Tensors.need(grads.bias(), C, "dbias C");
            queue.run("layernorm_backward_params", C, grads.weight(), grads.bias(), dout, inp, saved.mean(),
                    saved.rstd(), N, C);
        }
    }

    @Override
    public void quantizeActivations(Tensor out, Tensor scale, Tensor inp, int N, int C, int bits) {
        positive("N", N, "C", C);
        if (bits < 2 || bits > 8) {
            throw new IllegalArgumentException("argument bits = " + bits + ": must be in [2, 8]");
        }
        Tensors.need(out, (long) N * C, "out N*C");
        Tensors.need(scale, N, "scale N");
        Tensors.need(inp, (long) N * C, "inp N*C");
        queue.run("activation_quantize", N, out, scale, inp, N, C, (float) ((1 << (bits - 1)) - 1));
    }

    /** In place, butterflies h = 1, 2, 4, ..., then one scaling; a row per work-group in local memory if it fits. */
    @Override
    public void fwht(Tensor x, int N, int P) {
        positive("N", N, "P", P);
        if ((P & (P - 1)) != 0) {
            throw new IllegalArgumentException("argument P = " + P + ": must be a power of two");
        }
        Tensors.need(x, (long) N * P, "x N*P");
        float scale = (float) (1.0 / Math.sqrt(P));
        if (4L * P <= rt.device.localMemBytes() / 2) {
            long ls = Math.max(1, Math.min(P / 2, Math.min(256, rt.device.maxWorkGroupSize())));
            queue.launch("fwht_local", new long[] {N * ls}, new long[] {ls}, x, P, scale, new OpenCLQueue.Local(4L * P));
        } else {
            queue.run("fwht_row", N, x, N, P, scale);
        }
    }

    @Override
    public void rope(Tensor out, Tensor inp, Tensor cos, Tensor sin, Heads h, int pos0, boolean backward) {
        if (pos0 < 0) {
            throw new IllegalArgumentException("argument pos0 = " + pos0 + ": must be non-negative");
        }
        Tensors.need(out, h.size(), "B*T*NH*HS");
        Tensors.need(inp, h.size(), "B*T*NH*HS");
        Tensors.need(cos, (long) (pos0 + h.T()) * (h.HS() / 2), "cos (pos0+T)*HS/2");
        Tensors.need(sin, (long) (pos0 + h.T()) * (h.HS() / 2), "sin (pos0+T)*HS/2");
        queue.run(backward ? "rope_backward" : "rope_forward", h.size() / 2, out, inp, cos, sin, h.B(), h.T(), h.heads(),
                h.HS(), pos0);
    }

    @Override
    public void softmaxForward(Span x, int rows, int T) {
        positive("rows", rows, "T", T);
        x.need((long) rows * T, "rows*T");
        queue.run("softmax_rows", rows, x.tensor(), x.offset(), rows, T);
    }

    @Override
    public void softmaxBackward(Span d, Span p, int rows, int T, float scale) {
        positive("rows", rows, "T", T);
        d.need((long) rows * T, "d rows*T");
        p.need((long) rows * T, "p rows*T");
        queue.run("softmax_backward_rows", rows, d.tensor(), d.offset(), p.tensor(), p.offset(), rows, T, scale);
    }

    /** One work-group per row; the rows' (hi, lo) losses come back together. */
    @Override
    public void crossEntropy(Tensor logits, int[] targets, int R, int V, float gradScale, boolean grad,
                             double[] rowLoss) {
        positive("R", R, "V", V);
        Tensors.need(logits, (long) R * V, "logits R*V");
        if (rowLoss == null || rowLoss.length < R) {
            throw new IllegalArgumentException("argument rowLoss needs R = " + R + " entries");
        }
        if (targets.length < R) {
            throw new IllegalArgumentException("argument targets (int[]) has length " + targets.length
                    + ", expected at least " + R + " (R)");
        }
        for (int r = 0; r < R; r++) {
            if (targets[r] < -1 || targets[r] >= V) {
                throw new IllegalArgumentException("argument targets[" + r + "] = " + targets[r]
                        + ": must be -1 (ignored) or in [0, V) with V = " + V);
            }
        }
        long bytes = 8L * R;
        if (rowLossBuf == null || rowLossBytes < bytes) {
            if (rowLossBuf != null) {
                clReleaseMemObject(rowLossBuf);
            }
            rowLossBuf = queue.raw(bytes);
            rowLossBytes = bytes;
        }
        cl_mem tg = queue.ints(targets);
        queue.launch("cross_entropy", new long[] {(long) R * rt.rwg}, new long[] {rt.rwg}, logits, grad ? logits : null,
                grad, tg, V, gradScale, rowLossBuf);
        clReleaseMemObject(tg);
        float[] pairs = new float[2 * R];
        clEnqueueReadBuffer(rt.queue, rowLossBuf, CL_TRUE, 0, 8L * R, Pointer.to(pairs), 0, null, null);
        for (int r = 0; r < R; r++) {
            rowLoss[r] = (double) pairs[2 * r] + (double) pairs[2 * r + 1];
        }
    }

    // ---- attention: fused ------------------------------------------------------------------------------

    /**
     * Fused: one work-item per (sample, head, query) row computes its scores, softmax and output, in the
     * reference's order, so the result is bit-exact on fp64 devices (the default's per-head GEMMs are too,
     * forward, but not backward: they sum each gradient before adding it, the reference adds term by term).
     */
    @Override
    public void attentionForward(AttentionShape s, AttentionActs a, Tensor work) {
        checkAttention(s, a);
        Tensors.need(a.out(), s.queries().size(), "out B*T*NH*HS");
        queue.run("attention_forward", (long) s.B() * s.NH() * s.T(), a.out(), a.probs(), a.q(), a.k(), a.v(),
                a.dropMask(), a.dropMask() != null, s.B(), s.T(), s.NH(), s.NKV(), s.HS(), s.scale());
    }

    /** Fused, as {@link #attentionForward}: dscore and dq per query row, then dk and dv per key element. */
    @Override
    public void attentionBackward(AttentionShape s, AttentionActs a, Tensor dout, Tensor dq, Tensor dk, Tensor dv,
                                  Tensor work) {
        checkAttention(s, a);
        Tensors.need(dq, s.queries().size(), "dq B*T*NH*HS");
        Tensors.need(dk, s.keys().size(), "dk B*T*NKV*HS");
        Tensors.need(dv, s.keys().size(), "dv B*T*NKV*HS");
        Tensors.need(dout, s.queries().size(), "dout B*T*NH*HS");
        // every row's dscores at once (rows run in parallel): (B, NH, T, T), planned for the largest shape
        long bytes = 4L * s.B() * s.NH() * s.T() * s.T();
        if (dscore == null || dscoreBytes < bytes) {
            if (dscore != null) {
                clReleaseMemObject(dscore);
            }
            dscore = queue.raw(bytes);
            dscoreBytes = bytes;
        }
        queue.run("attention_backward_q", (long) s.B() * s.NH() * s.T(), dq, dscore, dout, a.q(), a.k(), a.v(),
                a.probs(), a.dropMask(), a.dropMask() != null, s.B(), s.T(), s.NH(), s.NKV(), s.HS(), s.scale());
        queue.run("attention_backward_kv", s.keys().size(), dk, dv, dscore, dout, a.q(), a.probs(), a.dropMask(),
                a.dropMask() != null, s.B(), s.T(), s.NH(), s.NKV(), s.HS());
    }

    private static void checkAttention(AttentionShape s, AttentionActs a) {
        Tensors.need(a.q(), s.queries().size(), "q B*T*NH*HS");
        Tensors.need(a.k(), s.keys().size(), "k B*T*NKV*HS");
        Tensors.need(a.v(), s.keys().size(), "v B*T*NKV*HS");
        Tensors.need(a.probs(), (long) s.B() * s.NH() * s.T() * s.T(), "probs B*NH*T*T");
        if (a.dropMask() != null) {
            Tensors.need(a.dropMask(), (long) s.B() * s.NH() * s.T() * s.T(), "dropMask B*NH*T*T");
        }
    }

    private static void positive(Object... namesAndValues) {
        bitskip.kernels.Check.positive(namesAndValues);
    }

    @Override
    public void sync() {
        queue.finish();
    }

    /** Releases every tensor of this backend and its own buffers (the device's compiled program stays cached). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        memory.releaseAll();
        for (cl_mem m : new cl_mem[] {sums, partials, rowLossBuf, dscore}) {
            if (m != null) {
                clReleaseMemObject(m);
            }
        }
        queue.close();
    }
}
