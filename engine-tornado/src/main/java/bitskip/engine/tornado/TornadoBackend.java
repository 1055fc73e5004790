package bitskip.engine.tornado;

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
import bitskip.kernels.Check;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The TornadoVM backend: every primitive of {@link Backend} is one or two kernels written as plain Java
 * methods (the {@code *Kernels} classes of this package) that TornadoVM compiles to OpenCL C at their first
 * launch, each in a task graph of one {@code TornadoExecutionPlan} built once per device ({@link KernelPlan}).
 * Every tensor lives in the device arena for the whole run; nothing comes back to the host inside a step
 * except what the interface returns there (whole-tensor sums, cross-entropy row losses, the routing loss),
 * and integer inputs (tokens, targets) go to the device as a launch's small integer input. The layers are
 * {@link Backend}'s compositions, except attention (fused: bit-exact and two launches per pass instead of
 * several per head) and the routing loss (kept on the device, where the interface's default would compute
 * it on the host).
 *
 * <p>The kernels translate kernels-java one to one, with the reference's order of float operations and its
 * double expressions in double, and TornadoVM's contracting and approximating options off ({@link
 * Numerics}): on a device with fp64 (PoCL, NVIDIA, AMD) everything but the whole-tensor sums agrees with the
 * reference bit for bit; the sums run as 256 partial sums in double, relative ~1e-15 from the reference's
 * sequential order. A device without fp64 is refused with that reason.
 */
public final class TornadoBackend implements Backend {
    private final KernelPlan k;
    private final List<TornadoTensor> tensors = new ArrayList<>();
    private TornadoTensor dscore;
    private boolean closed;

    /** For {@code Backends}, which loads this class by name (the engine is compiled for Java 17). */
    public static TornadoBackend create() {
        return new TornadoBackend();
    }

    /** The device of -Dbitskip.device / $BITSKIP_DEVICE (B:D or a name), else TornadoVM's default device. */
    public TornadoBackend() {
        this((String) null);
    }

    public TornadoBackend(String deviceSpec) {
        this(TornadoDevices.select(deviceSpec));
    }

    public TornadoBackend(TornadoDevices.Device device) {
        if (!device.fp64()) {
            throw new IllegalArgumentException("TornadoVM device " + device.id() + " (" + device.name() + ") has no fp64"
                    + " (cl_khr_fp64): the TornadoVM backend's kernels accumulate in double as the reference does;"
                    + " choose another device (--device B:D):" + System.lineSeparator() + TornadoDevices.listing());
        }
        this.k = KernelPlan.of(device);
    }

    public TornadoDevices.Device device() {
        return k.device;
    }

    @Override
    public String name() {
        return "tornado";
    }

    @Override
    public String description() {
        TornadoDevices.Device d = k.device;
        String numerics = Numerics.deviations().isEmpty() ? "exact numerics" : "TornadoVM numerics " + Numerics.deviations();
        return String.format(Locale.ROOT, "TornadoVM %s %s (%s, %d CU, arena %.0f MiB, %s)", d.id(), d.name(),
                d.platform(), d.computeUnits(), k.allocator.capacity() * 4 / 1048576.0, numerics);
    }

    // ---- memory -------------------------------------------------------------------------------------

    @Override
    public Tensor alloc(String name, int n) {
        if (n < 0) {
            throw new IllegalArgumentException("tensor " + name + ": negative size " + n);
        }
        if (closed) {
            throw new IllegalStateException("tensor " + name + ": this TornadoVM backend is closed");
        }
        synchronized (k) {
            int at = k.allocator.allocate(n);
            if (at < 0) {
                throw new IllegalStateException(String.format(Locale.ROOT,
                        "TornadoVM device %s (%s): the arena of %.1f MiB has no room for tensor %s (%.1f MiB; %.1f MiB"
                                + " allocated, largest free range %.1f MiB); start with a larger -D%s (e.g. %dm)",
                        k.device.id(), k.device.name(), k.allocator.capacity() * 4 / 1048576.0, name, 4.0 * n / 1048576,
                        k.allocator.used() * 4 / 1048576.0, k.allocator.largestFree() * 4 / 1048576.0,
                        KernelPlan.MEMORY_PROPERTY, 2 * (k.allocator.capacity() * 4 >> 20)));
            }
            TornadoTensor t = new TornadoTensor(this, name, at, n);
            tensors.add(t);
            k.ints(at, n).run(k.zero, n);
            return t;
        }
    }

    /** Returns x's range to the arena (Tensor.close; idempotent). */
    void release(TornadoTensor x) {
        synchronized (k) {
            if (!x.closed) {
                x.closed = true;
                k.allocator.release(x.offset, x.size);
                tensors.remove(x);
            }
        }
    }

    /** Kernel launches on this backend's device since the JVM started (all backends on it together). */
    public long launches() {
        synchronized (k) {
            return k.launches();
        }
    }

    /** Bytes of the tensors this backend holds now. */
    public long allocatedBytes() {
        synchronized (k) {
            long b = 0;
            for (TornadoTensor t : tensors) {
                b += 4L * ArenaAllocator.roundUp(Math.max(t.size, 1));
            }
            return b;
        }
    }

    /** The arena offset of x after checking that it is this backend's and open. */
    private int at(Tensor x) {
        if (x instanceof TornadoTensor o && o.owner == this) {
            if (o.closed) {
                throw new IllegalStateException("tensor " + x.name() + " is closed");
            }
            return o.offset;
        }
        throw new IllegalArgumentException("tensor " + (x == null ? "null" : x.name() + " belongs to another backend ("
                + x.getClass().getSimpleName() + ")") + ", not to this TornadoVM backend");
    }

    /** The arena offset of x, checked to hold n floats. */
    private int at(Tensor x, long n, String what) {
        return at(Tensors.need(x, n, what));
    }

    /** The arena offset of span s, checked to hold n floats from its offset. */
    private int at(Span s, long n, String what) {
        return at(s.need(n, what).tensor()) + s.offset();
    }

    @Override
    public void upload(Tensor dst, float[] src) {
        int o = at(dst, src.length, "the uploaded array's length");
        synchronized (k) {
            k.upload(o, src, src.length);
        }
    }

    @Override
    public void download(Tensor src, float[] dst) {
        int o = at(src, dst.length, "the destination array's length");
        synchronized (k) {
            k.download(o, dst, dst.length);
        }
    }

    /** Row by row in parallel; a single row that overlaps its source goes through a scratch range. */
    @Override
    public void copy(Span dst, int dstStride, Span src, int srcStride, int rows, int cols) {
        Check.positive("rows", rows, "cols", cols);
        int d = at(dst, (long) (rows - 1) * dstStride + cols, "copy destination rows*stride");
        int s = at(src, (long) (rows - 1) * srcStride + cols, "copy source rows*stride");
        if (d == s && dstStride == srcStride) {
            return;
        }
        synchronized (k) {
            if (rows == 1 && Math.abs(d - s) < cols) {
                int tmp = scratch(cols);
                k.ints(tmp, cols, s, cols, 1, cols).run(k.copy2d, cols);
                k.ints(d, cols, tmp, cols, 1, cols).run(k.copy2d, cols);
                k.allocator.release(tmp, cols);
            } else {
                k.ints(d, dstStride, s, srcStride, rows, cols).run(k.copy2d, (long) rows * cols);
            }
        }
    }

    /** A range of n floats for the duration of one op (the caller holds the plan's lock and releases it). */
    private int scratch(int n) {
        int at = k.allocator.allocate(n);
        if (at < 0) {
            throw new IllegalStateException("TornadoVM arena: no room for " + n + " floats of scratch (-D"
                    + KernelPlan.MEMORY_PROPERTY + ")");
        }
        return at;
    }

    // ---- element-wise, sums, rows ---------------------------------------------------------------------

    @Override
    public void pointwise(Pointwise op, Span out, Span a, Span b, int n, float s) {
        Check.positive("n", n);
        int o = at(out, n, "out n");
        int x = op.readsA() ? at(a, n, "a n") : 0, y = op.readsB() ? at(b, n, "b n") : 0;
        synchronized (k) {
            k.ints(op.ordinal(), o, x, y, n).floats(s).run(k.pointwise, n);
        }
    }

    /** Σ term(i) over n (ReduceKernels modes) into the arena at `out`: a stored double (post 0) or a float mean (post 1). */
    private void reduce(int mode, int x, int y, int n, float target, int post, int out) {
        k.ints(mode, x, y, n, KernelPlan.PARTIALS, KernelPlan.PARTIALS_AT).floats(target)
                .run(k.partials, KernelPlan.PARTIALS);
        k.ints(KernelPlan.PARTIALS_AT, KernelPlan.PARTIALS, post, n, out).run(k.finish, 1);
    }

    private double sum(int mode, int x, int y, int n, float target) {
        synchronized (k) {
            reduce(mode, x, y, n, target, 0, KernelPlan.SLOT_SUM);
            return k.readDouble(KernelPlan.SLOT_SUM);
        }
    }

    @Override
    public double reduce(Reduction r, Tensor a, Tensor b, int n) {
        Check.positive("n", n);
        int x = at(a, n, "a n");
        return switch (r) {
            case ABS -> sum(ReduceKernels.ABS, x, 0, n, 0.0f);
            case SQUARES -> sum(ReduceKernels.SQUARE, x, 0, n, 0.0f);
            case SQUARED_DIFF -> sum(ReduceKernels.SQUARED_DIFFERENCE, x, at(b, n, "b n"), n, 0.0f);
        };
    }

    @Override
    public void sumRows(Tensor dst, int dstOffset, Tensor src, int rows, int cols) {
        Check.positive("rows", rows, "cols", cols);
        int d = at(dst, (long) dstOffset + cols, "dstOffset + cols") + dstOffset;
        int s = at(src, (long) rows * cols, "rows*cols");
        synchronized (k) {
            k.ints(d, s, rows, cols).run(k.sumRows, cols);
        }
    }

    @Override
    public void rows(Rows op, Tensor dense, Tensor table, int[] index, int N, int C, int tableRows) {
        Check.positive("N", N, "C", C, "tableRows", tableRows);
        int d = at(dense, (long) N * C, "dense N*C"), t = at(table, (long) tableRows * C, "table tableRows*C");
        Tensors.needIndices(index, N, tableRows, "index");
        synchronized (k) {
            k.indices(index, N, "index");
            if (op == Rows.SCATTER_ADD) {
                k.ints(t, d, N, C).run(k.scatterAdd, C);
            } else {
                k.ints(d, t, N, C, op == Rows.GATHER_ADD ? 1 : 0).run(k.gather, (long) N * C);
            }
        }
    }

    @Override
    public void dropoutMask(Tensor mask, int n, float p, long seed, long offset) {
        Check.positive("n", n);
        if (!(p >= 0.0f && p < 1.0f)) {
            throw new IllegalArgumentException("argument p = " + p + ": dropout probability must be in [0, 1)");
        }
        int o = at(mask, n, "mask n");
        synchronized (k) {
            k.ints(o, n, (int) (seed >>> 32), (int) seed, (int) (offset >>> 32), (int) offset)
                    .floats(p, 1.0f / (1.0f - p)).run(k.dropoutMask, n);
        }
    }

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, AdamStep s) {
        Check.positive("n", n);
        int p = at(param, n, "param n"), g = at(grad, n, "grad n"), mo = at(m, n, "m n"), vo = at(v, n, "v n");
        synchronized (k) {
            k.ints(p, g, mo, vo, n).floats(s.decay(), s.lerpWeight(), s.beta2(), s.oneMinusBeta2(), s.bc2Sqrt(),
                    s.negStepSize(), s.eps()).run(k.adamW, n);
        }
    }

    // ---- linear algebra -------------------------------------------------------------------------------

    /** A 4x4 block of C per work-item, each element's sum over k in order (the reference's order). */
    @Override
    public void gemm(Gemm g) {
        Mat a = g.a(), b = g.b(), c = g.c();
        int blk = MatmulKernels.BLOCK;
        int bias = g.bias() == null ? 0 : at(g.bias());
        synchronized (k) {
            k.ints(g.M(), g.N(), g.K(), at(a.tensor()) + a.offset(), a.rowStride(), a.colStride(),
                    at(b.tensor()) + b.offset(), b.rowStride(), b.colStride(), at(c.tensor()) + c.offset(), c.ld(), bias,
                    g.bias() != null ? 1 : 0).floats(g.alpha(), g.beta())
                    .run2(k.gemm, (g.M() + blk - 1) / blk, (g.N() + blk - 1) / blk);
        }
    }

    // ---- rows: LayerNorm, quantizer, FWHT, RoPE, softmax, cross-entropy --------------------------------

    @Override
    public void layerNormForward(Tensor out, NormStats saved, Tensor inp, Norm params, int N, int C, float eps) {
        Check.positive("N", N, "C", C);
        int o = at(out, (long) N * C, "out N*C"), x = at(inp, (long) N * C, "inp N*C");
        int mu = at(saved.mean(), N, "mean N"), rs = at(saved.rstd(), N, "rstd N");
        int w = params.affine() ? at(params.weight(), C, "weight C") : 0;
        int b = params.affine() ? at(params.bias(), C, "bias C") : 0;
        synchronized (k) {
            k.ints(o, mu, rs, x, w, b, params.affine() ? 1 : 0, N, C).floats(eps).run(k.layerNormForward, N);
        }
    }

    @Override
    public void layerNormBackward(Tensor dinp, Norm grads, Tensor dout, Tensor inp, Norm params, NormStats saved,
                                  int N, int C) {
        Check.positive("N", N, "C", C);
        int dx = at(dinp, (long) N * C, "dinp N*C"), d = at(dout, (long) N * C, "dout N*C");
        int x = at(inp, (long) N * C, "inp N*C"), mu = at(saved.mean(), N, "mean N"), rs = at(saved.rstd(), N, "rstd N");
        int w = params.affine() ? at(params.weight(), C, "weight C") : 0;
        synchronized (k) {
            k.ints(dx, d, x, w, params.affine() ? 1 : 0, mu, rs, N, C).run(k.layerNormBackwardInput, N);
            if (params.affine()) {
                int dw = at(grads.weight(), C, "dweight C"), db = at(grads.bias(), C, "dbias C");
                k.ints(dw, db, d, x, mu, rs, N, C).run(k.layerNormBackwardParams, C);
            }
        }
    }

    @Override
    public void quantizeActivations(Tensor out, Tensor scale, Tensor inp, int N, int C, int bits) {
        Check.positive("N", N, "C", C);
        if (bits < 2 || bits > 8) {
            throw new IllegalArgumentException("argument bits = " + bits + ": must be in [2, 8]");
        }
        int o = at(out, (long) N * C, "out N*C"), s = at(scale, N, "scale N"), x = at(inp, (long) N * C, "inp N*C");
        synchronized (k) {
            k.ints(o, s, x, N, C).floats((float) ((1 << (bits - 1)) - 1)).run(k.activationQuantize, N);
        }
    }

    @Override
    public void fwht(Tensor x, int N, int P) {
        Check.positive("N", N, "P", P);
        if ((P & (P - 1)) != 0) {
            throw new IllegalArgumentException("argument P = " + P + ": must be a power of two");
        }
        int o = at(x, (long) N * P, "x N*P");
        synchronized (k) {
            k.ints(o, N, P).floats((float) (1.0 / Math.sqrt(P))).run(k.fwhtRows, N);
        }
    }

    @Override
    public void rope(Tensor out, Tensor inp, Tensor cos, Tensor sin, Heads h, int pos0, boolean backward) {
        if (pos0 < 0) {
            throw new IllegalArgumentException("argument pos0 = " + pos0 + ": must be non-negative");
        }
        long table = (long) (pos0 + h.T()) * (h.HS() / 2);
        int o = at(out, h.size(), "B*T*NH*HS"), x = at(inp, h.size(), "B*T*NH*HS");
        int c = at(cos, table, "cos (pos0+T)*HS/2"), s = at(sin, table, "sin (pos0+T)*HS/2");
        synchronized (k) {
            k.ints(o, x, c, s, h.B(), h.T(), h.heads(), h.HS(), pos0, backward ? 1 : 0).run(k.rope, h.size() / 2);
        }
    }

    @Override
    public void softmaxForward(Span x, int rows, int T) {
        Check.positive("rows", rows, "T", T);
        int o = at(x, (long) rows * T, "rows*T");
        synchronized (k) {
            k.ints(o, rows, T).run(k.softmaxRows, rows);
        }
    }

    @Override
    public void softmaxBackward(Span d, Span p, int rows, int T, float scale) {
        Check.positive("rows", rows, "T", T);
        int dd = at(d, (long) rows * T, "d rows*T"), pp = at(p, (long) rows * T, "p rows*T");
        synchronized (k) {
            k.ints(dd, pp, rows, T).floats(scale).run(k.softmaxBackwardRows, rows);
        }
    }

    /** Per-row statistics and losses, then (with grad) the gradient in place; the losses come back together. */
    @Override
    public void crossEntropy(Tensor logits, int[] targets, int R, int V, float gradScale, boolean grad,
                             double[] rowLoss) {
        Check.positive("R", R, "V", V);
        int lg = at(logits, (long) R * V, "logits R*V");
        if (rowLoss == null || rowLoss.length < R) {
            throw new IllegalArgumentException("argument rowLoss needs R = " + R + " entries");
        }
        if (targets == null || targets.length < R) {
            throw new IllegalArgumentException("argument targets (int[]) has length "
                    + (targets == null ? "null" : targets.length) + ", expected at least " + R + " (R)");
        }
        for (int r = 0; r < R; r++) {
            if (targets[r] < -1 || targets[r] >= V) {
                throw new IllegalArgumentException("argument targets[" + r + "] = " + targets[r]
                        + ": must be -1 (ignored) or in [0, V) with V = " + V);
            }
        }
        synchronized (k) {
            int stats = scratch(4 * R), losses = scratch(3 * R);
            try {
                k.indices(targets, R, "targets").ints(lg, stats, losses, R, V).run(k.crossEntropyRows, R);
                if (grad) {
                    k.ints(lg, stats, R, V).floats(gradScale).run(k.crossEntropyGradient, (long) R * V);
                }
                float[] v = new float[3 * R];
                k.download(losses, v, 3 * R);
                for (int r = 0; r < R; r++) {
                    rowLoss[r] = (double) v[3 * r] + (double) v[3 * r + 1] + (double) v[3 * r + 2];
                }
            } finally {
                k.allocator.release(losses, 3 * R);
                k.allocator.release(stats, 4 * R);
            }
        }
    }

    // ---- composites kept on the device ---------------------------------------------------------------

    /**
     * Fused: one work-item per (sample, head, query) row computes its scores, softmax and output in the
     * reference's order (bit-exact; the default's per-head GEMMs are too, forward, but not backward, and
     * they take several launches per head).
     */
    @Override
    public void attentionForward(AttentionShape s, AttentionActs a, Tensor work) {
        int[] in = attentionInputs(s, a);
        int o = at(a.out(), s.queries().size(), "out B*T*NH*HS");
        synchronized (k) {
            k.ints(o, in[3], in[0], in[1], in[2], in[4], a.dropMask() != null ? 1 : 0, s.B(), s.T(), s.NH(), s.NKV(),
                    s.HS()).floats(s.scale()).run(k.attentionForward, (long) s.B() * s.NH() * s.T());
        }
    }

    /** Fused, as {@link #attentionForward}: the score gradients and dq per query row, then dk and dv per element. */
    @Override
    public void attentionBackward(AttentionShape s, AttentionActs a, Tensor dout, Tensor dq, Tensor dk, Tensor dv,
                                  Tensor work) {
        int[] in = attentionInputs(s, a);
        int dqo = at(dq, s.queries().size(), "dq B*T*NH*HS"), dko = at(dk, s.keys().size(), "dk B*T*NKV*HS");
        int dvo = at(dv, s.keys().size(), "dv B*T*NKV*HS"), d = at(dout, s.queries().size(), "dout B*T*NH*HS");
        // every row's score gradients at once (rows run in parallel): (B, NH, T, T), kept for the largest shape
        int rows = s.B() * s.NH() * s.T() * s.T();
        if (dscore == null || dscore.size < rows) {
            if (dscore != null) {
                dscore.close();
            }
            dscore = (TornadoTensor) alloc("tornado.attention.dscore", rows);
        }
        int mask = a.dropMask() != null ? 1 : 0;
        synchronized (k) {
            k.ints(dqo, dscore.offset, d, in[0], in[1], in[2], in[3], in[4], mask, s.B(), s.T(), s.NH(), s.NKV(), s.HS())
                    .floats(s.scale()).run(k.attentionBackwardQuery, (long) s.B() * s.NH() * s.T());
            k.ints(dko, dvo, dscore.offset, d, in[0], in[3], in[4], mask, s.B(), s.T(), s.NH(), s.NKV(), s.HS())
                    .run(k.attentionBackwardKeyValue, s.keys().size());
        }
    }

    /** Offsets of q, k, v, probs and the dropout mask (0 when absent), checked against the shape. */
    private int[] attentionInputs(AttentionShape s, AttentionActs a) {
        long p = (long) s.B() * s.NH() * s.T() * s.T();
        return new int[] {at(a.q(), s.queries().size(), "q B*T*NH*HS"), at(a.k(), s.keys().size(), "k B*T*NKV*HS"),
                at(a.v(), s.keys().size(), "v B*T*NKV*HS"), at(a.probs(), p, "probs B*NH*T*T"),
                a.dropMask() == null ? 0 : at(a.dropMask(), p, "dropMask B*NH*T*T")};
    }

    /** On the device (the interface's default downloads pExit and computes it on the host). */
    @Override
    public double routingLossForward(Tensor lbar, Tensor pExit, int L, int N, float target, boolean batchMean) {
        Check.positive("L", L, "N", N);
        int lb = at(lbar, N, "lbar N"), pe = at(pExit, (long) L * N, "pExit L*N");
        synchronized (k) {
            k.ints(lb, pe, L, N).run(k.expectedExit, N);
        }
        if (batchMean) {
            double d = sum(ReduceKernels.VALUE, lb, 0, N, 0.0f) / N - target;
            return d * d;
        }
        return sum(ReduceKernels.SQUARED_DEVIATION, lb, 0, N, target) / N;
    }

    /** On the device, as {@link #routingLossForward}; with batchMean the mean of lbar stays there too. */
    @Override
    public void routingLossBackward(Tensor dpExit, Tensor pExit, Tensor lbar, int L, int N, float target,
                                    boolean batchMean, float gradScale) {
        Check.positive("L", L, "N", N);
        int d = at(dpExit, (long) L * N, "dpExit L*N"), pe = at(pExit, (long) L * N, "pExit L*N");
        int lb = at(lbar, N, "lbar N");
        synchronized (k) {
            if (batchMean) {
                reduce(ReduceKernels.VALUE, lb, 0, N, 0.0f, 1, KernelPlan.SLOT_MEAN);
            }
            k.ints(d, pe, lb, L, N, batchMean ? 1 : 0, KernelPlan.SLOT_MEAN).floats(target, gradScale)
                    .run(k.routingBackward, N);
        }
    }

    // ---- lifetime --------------------------------------------------------------------------------------

    /** Returns this backend's tensors to the device arena (the compiled kernels stay for the next backend). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        synchronized (k) {
            for (TornadoTensor x : new ArrayList<>(tensors)) {
                release(x);
            }
        }
        dscore = null;
    }
}
