package bitskip.engine;

import static bitskip.engine.HeapTensor.of;

import bitskip.kernels.Activations;
import bitskip.kernels.Attention;
import bitskip.kernels.BitLinear;
import bitskip.kernels.Check;
import bitskip.kernels.CrossEntropy;
import bitskip.kernels.Dropout;
import bitskip.kernels.Embedding;
import bitskip.kernels.ExitAdapter;
import bitskip.kernels.GradClip;
import bitskip.kernels.HBitLinear;
import bitskip.kernels.Hadamard;
import bitskip.kernels.LayerNorm;
import bitskip.kernels.LowRankHead;
import bitskip.kernels.Matmul;
import bitskip.kernels.Quantize;
import bitskip.kernels.Rope;
import bitskip.kernels.Router;
import java.util.Arrays;

/**
 * The scalar Java reference backend: every primitive is the {@code kernels-java} kernel of the same name on
 * heap arrays, single-threaded, and (unless made by {@link #primitivesOnly}) every composite that has a
 * {@code kernels-java} counterpart is that kernel too. It defines what every other backend must compute,
 * and the kernels being written independently of {@link Backend}'s compositions, it also tests them.
 *
 * <p>Heap tensors are the garbage collector's: {@link #close} has nothing to free.
 */
public final class JavaBackend implements Backend {
    private final boolean kernelComposites;

    /** The oracle: the kernels' primitives and the kernels' composites. */
    public JavaBackend() {
        this(true);
    }

    private JavaBackend(boolean kernelComposites) {
        this.kernelComposites = kernelComposites;
    }

    /**
     * The kernels' primitives under {@link Backend}'s own compositions: what a backend that writes only the
     * primitives computes, without its rounding. The equivalence harness holds it to the oracle.
     */
    public static JavaBackend primitivesOnly() {
        return new JavaBackend(false);
    }

    @Override
    public String name() {
        return "java";
    }

    @Override
    public String description() {
        return "scalar Java reference (kernels-java), 1 thread" + (kernelComposites ? "" : ", Backend's compositions");
    }

    // ==== primitives =================================================================================

    @Override
    public Tensor alloc(String name, int n) {
        return new HeapTensor(name, n);
    }

    @Override
    public void upload(Tensor dst, float[] src) {
        float[] d = of(dst);
        Check.len(d, dst.name(), src.length, "the uploaded array's length");
        System.arraycopy(src, 0, d, 0, src.length);
    }

    @Override
    public void download(Tensor src, float[] dst) {
        float[] s = of(src);
        Check.len(s, src.name(), dst.length, "the destination array's length");
        System.arraycopy(s, 0, dst, 0, dst.length);
    }

    @Override
    public void copy(Span dst, int dstStride, Span src, int srcStride, int rows, int cols) {
        Check.positive("rows", rows, "cols", cols);
        dst.need((long) (rows - 1) * dstStride + cols, "copy destination rows*stride");
        src.need((long) (rows - 1) * srcStride + cols, "copy source rows*stride");
        float[] d = of(dst.tensor()), s = of(src.tensor());
        for (int r = 0; r < rows; r++) {
            System.arraycopy(s, src.offset() + r * srcStride, d, dst.offset() + r * dstStride, cols);
        }
    }

    @Override
    public void pointwise(Pointwise op, Span out, Span a, Span b, int n, float s) {
        Check.positive("n", n);
        float[] o = slice(out.need(n, "out n"), n);
        float[] x = op.readsA() ? slice(a.need(n, "a n"), n) : null;
        float[] y = op.readsB() ? slice(b.need(n, "b n"), n) : null;
        switch (op) {
            case FILL -> Arrays.fill(o, 0, n, s);
            case ADD -> Activations.add(o, x, y, n);
            case SCALE -> {
                if (o != x) {
                    System.arraycopy(x, 0, o, 0, n);
                }
                GradClip.scale(o, n, s);
            }
            case MUL -> Dropout.forward(o, x, y, n);
            case MUL_ADD -> Dropout.backward(o, x, y, n);
            case RELU -> Activations.reluForward(o, x, n);
            case RELU_BACKWARD -> Activations.reluBackward(o, x, y, n);
            case RELU2 -> Activations.relu2Forward(o, x, n);
            case RELU2_BACKWARD -> Activations.relu2Backward(o, x, y, n);
            case SIGMOID -> Activations.sigmoidForward(o, x, n);
            case SIGMOID_BACKWARD -> Activations.sigmoidBackward(o, x, y, n);
            case SQUARED_ERROR_BACKWARD -> Quantize.squaredErrorBackward(o, x, y, n, s);
            case TERNARY -> Quantize.ternaryCodes(o, null, x, n, s);
        }
        if (out.offset() != 0) {
            System.arraycopy(o, 0, of(out.tensor()), out.offset(), n);
        }
    }

    /**
     * The n floats of a span as an array the kernels can read from index 0: the tensor's own array at offset
     * 0 (kernels accept longer arrays), else a copy. The reference favours plain code over speed.
     */
    private static float[] slice(Span s, int n) {
        float[] a = of(s.tensor());
        return s.offset() == 0 ? a : Arrays.copyOfRange(a, s.offset(), s.offset() + n);
    }

    @Override
    public double reduce(Reduction r, Tensor a, Tensor b, int n) {
        return switch (r) {
            case ABS -> Quantize.sumAbs(of(a), n);
            case SQUARES -> GradClip.sumSquares(of(a), n);
            case SQUARED_DIFF -> Quantize.squaredError(of(a), of(b), n);
        };
    }

    @Override
    public void gemm(Gemm g) {
        Mat a = g.a(), b = g.b(), c = g.c();
        Matmul.gemm(of(c.tensor()), c.offset(), c.ld(), of(a.tensor()), a.offset(), a.rowStride(), a.colStride(),
                of(b.tensor()), b.offset(), b.rowStride(), b.colStride(), of(g.bias()), g.M(), g.N(), g.K(), g.alpha(),
                g.beta());
    }

    @Override
    public void sumRows(Tensor dst, int dstOffset, Tensor src, int rows, int cols) {
        Matmul.sumRows(of(dst), dstOffset, of(src), rows, cols);
    }

    @Override
    public void rows(Rows op, Tensor dense, Tensor table, int[] index, int N, int C, int tableRows) {
        switch (op) {
            case GATHER -> Embedding.forward(of(dense), index, of(table), N, C, tableRows);
            case GATHER_ADD -> Embedding.forwardAdd(of(dense), index, of(table), N, C, tableRows);
            case SCATTER_ADD -> Embedding.backward(of(table), of(dense), index, N, C, tableRows);
        }
    }

    @Override
    public void layerNormForward(Tensor out, NormStats saved, Tensor inp, Norm params, int N, int C, float eps) {
        LayerNorm.forward(of(out), of(saved.mean()), of(saved.rstd()), of(inp), of(params.weight()),
                of(params.bias()), N, C, eps);
    }

    @Override
    public void layerNormBackward(Tensor dinp, Norm grads, Tensor dout, Tensor inp, Norm params, NormStats saved,
                                  int N, int C) {
        LayerNorm.backward(of(dinp), of(grads.weight()), of(grads.bias()), of(dout), of(inp), of(params.weight()),
                of(saved.mean()), of(saved.rstd()), N, C);
    }

    @Override
    public void dropoutMask(Tensor mask, int n, float p, long seed, long offset) {
        Dropout.mask(of(mask), n, p, seed, offset);
    }

    @Override
    public void quantizeActivations(Tensor out, Tensor scale, Tensor inp, int N, int C, int bits) {
        Quantize.activationForward(of(out), null, of(scale), of(inp), N, C, bits);
    }

    @Override
    public void fwht(Tensor x, int N, int P) {
        float[] a = of(x);
        Hadamard.forward(a, a, N, P);
    }

    @Override
    public void rope(Tensor out, Tensor inp, Tensor cos, Tensor sin, Heads h, int pos0, boolean backward) {
        if (backward) {
            Rope.backward(of(out), of(inp), of(cos), of(sin), h.B(), h.T(), h.heads(), h.HS(), pos0);
        } else {
            Rope.forward(of(out), of(inp), of(cos), of(sin), h.B(), h.T(), h.heads(), h.HS(), pos0);
        }
    }

    @Override
    public void softmaxForward(Span x, int rows, int T) {
        Attention.softmaxRows(of(x.tensor()), x.offset(), rows, T);
    }

    @Override
    public void softmaxBackward(Span d, Span p, int rows, int T, float scale) {
        Attention.softmaxBackwardRows(of(d.tensor()), d.offset(), of(p.tensor()), p.offset(), rows, T, scale);
    }

    @Override
    public void crossEntropy(Tensor logits, int[] targets, int R, int V, float gradScale, boolean grad,
                             double[] rowLoss) {
        float[] lg = of(logits);
        CrossEntropy.rowLosses(lg, grad ? lg : null, targets, R, V, gradScale, rowLoss);
    }

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, AdamStep s) {
        bitskip.kernels.AdamW.update(of(param), of(grad), of(m), of(v), n, s.lr(), s.beta1(), s.beta2(), s.eps(),
                s.weightDecay(), s.step());
    }

    // ==== composites: the kernels' own (unless primitivesOnly) =========================================

    @Override
    public float bitLinearForward(QuantLinear q, int N, LinearParams p, LinearActs a) {
        if (!kernelComposites) {
            return Backend.super.bitLinearForward(q, N, p, a);
        }
        return BitLinear.forward(of(a.out()), of(a.preact()), of(a.xHat()), of(a.actScale()), of(a.wHat()),
                of(a.inp()), of(p.weight()), N, q.in(), q.out(), q.actBits(), q.ternary(), q.relu2());
    }

    @Override
    public void bitLinearBackward(QuantLinear q, int N, LinearParams p, LinearActs a, Tensor dout, Tensor dinp,
                                  LinearParams grads, LinearScratch s) {
        if (!kernelComposites) {
            Backend.super.bitLinearBackward(q, N, p, a, dout, dinp, grads, s);
            return;
        }
        BitLinear.backward(of(dinp), of(grads.weight()), of(s.dpreact()), of(dout), of(a.preact()), of(a.xHat()),
                of(a.wHat()), of(a.inp()), of(p.weight()), N, q.in(), q.out(), q.actBits(), q.ternary(), q.relu2());
    }

    @Override
    public float hBitLinearForward(QuantLinear q, int N, LinearParams p, LinearActs a) {
        if (!kernelComposites) {
            return Backend.super.hBitLinearForward(q, N, p, a);
        }
        return HBitLinear.forward(of(a.out()), of(a.preact()), of(a.xHat()), of(a.actScale()), of(a.wHat()),
                of(a.z()), of(a.lnOut()), of(a.ln().mean()), of(a.ln().rstd()), of(a.inp()), of(p.norm().weight()),
                of(p.norm().bias()), of(p.weight()), N, q.in(), q.padded(), q.out(), q.eps(), q.actBits(),
                q.ternary(), q.relu2());
    }

    @Override
    public void hBitLinearBackward(QuantLinear q, int N, LinearParams p, LinearActs a, Tensor dout, Tensor dinp,
                                   LinearParams grads, LinearScratch s) {
        if (!kernelComposites) {
            Backend.super.hBitLinearBackward(q, N, p, a, dout, dinp, grads, s);
            return;
        }
        HBitLinear.backward(of(dinp), of(grads.norm().weight()), of(grads.norm().bias()), of(grads.weight()),
                of(s.dpreact()), of(s.dz()), of(s.dlnOut()), of(dout), of(a.preact()), of(a.xHat()), of(a.wHat()),
                of(a.z()), of(a.ln().mean()), of(a.ln().rstd()), of(a.inp()), of(p.norm().weight()), of(p.weight()),
                N, q.in(), q.padded(), q.out(), q.actBits(), q.ternary(), q.relu2());
    }

    @Override
    public void attentionForward(AttentionShape s, AttentionActs a, Tensor work) {
        if (!kernelComposites) {
            Backend.super.attentionForward(s, a, work);
            return;
        }
        Attention.forward(of(a.out()), of(a.probs()), of(a.q()), of(a.k()), of(a.v()), of(a.dropMask()), s.B(), s.T(),
                s.NH(), s.NKV(), s.HS());
    }

    @Override
    public void attentionBackward(AttentionShape s, AttentionActs a, Tensor dout, Tensor dq, Tensor dk, Tensor dv,
                                  Tensor work) {
        if (!kernelComposites) {
            Backend.super.attentionBackward(s, a, dout, dq, dk, dv, work);
            return;
        }
        Attention.backward(of(dq), of(dk), of(dv), of(work), of(dout), of(a.q()), of(a.k()), of(a.v()), of(a.probs()),
                of(a.dropMask()), s.B(), s.T(), s.NH(), s.NKV(), s.HS());
    }

    @Override
    public void routerForward(RouterShape r, int N, RouterParams p, RouterActs a) {
        if (!kernelComposites) {
            Backend.super.routerForward(r, N, p, a);
            return;
        }
        Router.forward(of(a.p()), of(a.ln()), of(a.lnStats().mean()), of(a.lnStats().rstd()), of(a.hidden()), of(a.h()),
                of(p.norm().weight()), of(p.norm().bias()), of(p.w1()), of(p.b1()), of(p.w2()), of(p.b2()), N, r.C(),
                r.H(), r.eps());
    }

    @Override
    public void routerBackward(RouterShape r, int N, RouterParams p, RouterActs a, Tensor dp, Tensor dh,
                               RouterParams grads, RouterScratch s) {
        if (!kernelComposites) {
            Backend.super.routerBackward(r, N, p, a, dp, dh, grads, s);
            return;
        }
        Router.backward(of(dh), of(grads.norm().weight()), of(grads.norm().bias()), of(grads.w1()), of(grads.b1()),
                of(grads.w2()), of(grads.b2()), of(s.dlogit()), of(s.dhidden()), of(s.dpre()), of(s.dln()), of(dp),
                of(a.p()), of(a.ln()), of(a.lnStats().mean()), of(a.lnStats().rstd()), of(a.hidden()), of(a.h()),
                of(p.norm().weight()), of(p.w1()), of(p.w2()), N, r.C(), r.H());
    }

    /**
     * The head loss as {@code Matmul} and {@code CrossEntropy} compose it: row chunks copied in and out of
     * chunk-sized arrays (the kernels take whole arrays), each chunk's loss summed, then added.
     */
    @Override
    public void exitAdapterForward(int N, int C, float eps, AdapterParams p, AdapterActs a) {
        if (!kernelComposites) {
            Backend.super.exitAdapterForward(N, C, eps, p, a);
            return;
        }
        ExitAdapter.forward(of(a.out()), of(a.ln()), of(a.lnStats().mean()), of(a.lnStats().rstd()), of(a.h()),
                of(p.norm().weight()), of(p.norm().bias()), of(p.w()), N, C, eps);
    }

    @Override
    public void exitAdapterBackward(int N, int C, AdapterParams p, AdapterActs a, Tensor dout, Tensor dh,
                                    AdapterParams grads, Tensor dln) {
        if (!kernelComposites) {
            Backend.super.exitAdapterBackward(N, C, p, a, dout, dh, grads, dln);
            return;
        }
        ExitAdapter.backward(of(dh), of(grads.norm().weight()), of(grads.norm().bias()), of(grads.w()), of(dln),
                of(dout), of(a.h()), of(a.ln()), of(a.lnStats().mean()), of(a.lnStats().rstd()), of(p.norm().weight()),
                of(p.w()), N, C);
    }

    @Override
    public void lowRankHeadForward(Tensor out, Tensor w, Tensor up, Tensor down, int V, int C, int r) {
        if (!kernelComposites) {
            Backend.super.lowRankHeadForward(out, w, up, down, V, C, r);
            return;
        }
        LowRankHead.forward(of(out), of(w), of(up), of(down), V, C, r);
    }

    @Override
    public void lowRankHeadBackward(Tensor dup, Tensor ddown, Tensor dout, Tensor up, Tensor down, int V, int C,
                                    int r) {
        if (!kernelComposites) {
            Backend.super.lowRankHeadBackward(dup, ddown, dout, up, down, V, C, r);
            return;
        }
        LowRankHead.backward(of(dup), of(ddown), of(dout), of(up), of(down), V, C, r);
    }

    @Override
    public double headLoss(LmHead head, Tensor x, int[] targets, int N, float gradScale, Tensor dx) {
        if (!kernelComposites) {
            return Backend.super.headLoss(head, x, targets, N, gradScale, dx);
        }
        int C = head.C(), V = head.V(), chunkRows = head.chunkRows();
        float[] xs = of(x), w = of(head.weight()), lg = of(head.logits());
        float[] dxs = of(dx), dw = dxs == null ? null : of(head.grad());
        Check.len(targets, "targets", N, "N");
        Check.len(lg, head.logits().name(), (long) Math.min(chunkRows, N) * V, "min(chunkRows, N)*V");
        double loss = 0.0;
        float[] xChunk = new float[Math.min(chunkRows, N) * C];
        float[] dxChunk = dxs == null ? null : new float[xChunk.length];
        int[] tChunk = new int[Math.min(chunkRows, N)];
        for (int r0 = 0; r0 < N; r0 += chunkRows) {
            int R = Math.min(chunkRows, N - r0);
            System.arraycopy(xs, r0 * C, xChunk, 0, R * C);
            System.arraycopy(targets, r0, tChunk, 0, R);
            Matmul.forward(lg, xChunk, w, null, R, C, V);
            // with a gradient, the logits are replaced by it in place (CrossEntropy reads each before writing)
            loss += CrossEntropy.forwardBackward(lg, dxs == null ? null : lg, tChunk, R, V, gradScale);
            if (dxs != null) {
                Arrays.fill(dxChunk, 0, R * C, 0.0f);
                Matmul.backward(dxChunk, dw, null, lg, xChunk, w, R, C, V);
                for (int i = 0; i < R * C; i++) {
                    dxs[r0 * C + i] += dxChunk[i];
                }
            }
        }
        return loss;
    }
}
