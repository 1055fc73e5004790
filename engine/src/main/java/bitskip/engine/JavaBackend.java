package bitskip.engine;

import static bitskip.engine.HeapTensor.of;

import bitskip.kernels.Activations;
import bitskip.kernels.Attention;
import bitskip.kernels.BitLinear;
import bitskip.kernels.HBitLinear;
import bitskip.kernels.Router;
import bitskip.kernels.Check;
import bitskip.kernels.CrossEntropy;
import bitskip.kernels.Dropout;
import bitskip.kernels.Embedding;
import bitskip.kernels.GradClip;
import bitskip.kernels.LayerNorm;
import bitskip.kernels.Matmul;
import bitskip.kernels.Quantize;
import bitskip.kernels.Rope;
import bitskip.kernels.RoutingLoss;
import bitskip.kernels.AdamW;

/**
 * The scalar Java reference backend: every op is the {@code kernels-java} kernel of the same name on
 * heap arrays, single-threaded. It defines what every other backend must compute.
 */
public class JavaBackend implements Backend {

    @Override
    public String name() {
        return "java";
    }

    @Override
    public String description() {
        return "scalar Java reference (kernels-java), 1 thread";
    }

    @Override
    public Tensor alloc(String name, int n) {
        return new HeapTensor(name, n);
    }

    @Override
    public void zero(Tensor t) {
        java.util.Arrays.fill(of(t), 0.0f);
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
    public void copy(Tensor dst, Tensor src, int n) {
        System.arraycopy(of(src), 0, of(dst), 0, n);
    }

    @Override
    public void copy(Tensor dst, int dstOffset, Tensor src, int srcOffset, int n) {
        System.arraycopy(of(src), srcOffset, of(dst), dstOffset, n);
    }

    @Override
    public void embeddingForward(Tensor out, int[] tokens, Tensor wte, int N, int C, int V) {
        Embedding.forward(of(out), tokens, of(wte), N, C, V);
    }

    @Override
    public void embeddingBackward(Tensor dwte, Tensor dout, int[] tokens, int N, int C, int V) {
        Embedding.backward(of(dwte), of(dout), tokens, N, C, V);
    }

    @Override
    public void positionsForward(Tensor out, Tensor wpe, int B, int T, int C, int pos0, int maxT) {
        Embedding.positionsForward(of(out), of(wpe), B, T, C, pos0, maxT);
    }

    @Override
    public void positionsBackward(Tensor dwpe, Tensor dout, int B, int T, int C, int pos0, int maxT) {
        Embedding.positionsBackward(of(dwpe), of(dout), B, T, C, pos0, maxT);
    }

    @Override
    public void layerNormForward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor weight, Tensor bias,
                                 int N, int C, float eps) {
        LayerNorm.forward(of(out), of(mean), of(rstd), of(inp), of(weight), of(bias), N, C, eps);
    }

    @Override
    public void layerNormBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp,
                                  Tensor weight, Tensor mean, Tensor rstd, int N, int C) {
        LayerNorm.backward(of(dinp), of(dweight), of(dbias), of(dout), of(inp), of(weight), of(mean), of(rstd), N, C);
    }

    @Override
    public void matmulForward(Tensor out, Tensor inp, Tensor weight, Tensor bias, int N, int C, int OC) {
        Matmul.forward(of(out), of(inp), of(weight), of(bias), N, C, OC);
    }

    @Override
    public void matmulBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight,
                               int N, int C, int OC) {
        Matmul.backward(of(dinp), of(dweight), of(dbias), of(dout), of(inp), of(weight), N, C, OC);
    }

    @Override
    public void relu2Forward(Tensor out, Tensor inp, int n) {
        Activations.relu2Forward(of(out), of(inp), n);
    }

    @Override
    public void relu2Backward(Tensor dinp, Tensor dout, Tensor inp, int n) {
        Activations.relu2Backward(of(dinp), of(dout), of(inp), n);
    }

    @Override
    public void add(Tensor out, Tensor a, Tensor b, int n) {
        Activations.add(of(out), of(a), of(b), n);
    }

    @Override
    public void accumulate(Tensor dst, Tensor src, int n) {
        float[] d = of(dst);
        Activations.add(d, d, of(src), n);
    }

    @Override
    public void scale(Tensor t, int n, float factor) {
        GradClip.scale(of(t), n, factor);
    }

    @Override
    public void dropoutMask(Tensor mask, int n, float p, long seed, long offset) {
        Dropout.mask(of(mask), n, p, seed, offset);
    }

    @Override
    public void dropoutForward(Tensor out, Tensor inp, Tensor mask, int n) {
        Dropout.forward(of(out), of(inp), of(mask), n);
    }

    @Override
    public void dropoutBackward(Tensor dinp, Tensor dout, Tensor mask, int n) {
        Dropout.backward(of(dinp), of(dout), of(mask), n);
    }

    @Override
    public void selectSamples(Tensor out, Tensor computed, Tensor skipped, int[] skip, int B, int T, int C) {
        float[] o = of(out), c = of(computed), s = of(skipped);
        Check.len(skip, "skip", B, "B");
        int rows = T * C;
        for (int b = 0; b < B; b++) {
            System.arraycopy(skip[b] != 0 ? s : c, b * rows, o, b * rows, rows);
        }
    }

    @Override
    public void selectSamplesBackward(Tensor dcomputed, Tensor dskipped, Tensor dout, int[] skip, int B, int T, int C) {
        float[] dc = of(dcomputed), ds = of(dskipped), d = of(dout);
        Check.len(skip, "skip", B, "B");
        int rows = T * C;
        for (int b = 0; b < B; b++) {
            int base = b * rows;
            for (int i = 0; i < rows; i++) {
                if (skip[b] != 0) {
                    dc[base + i] = 0.0f;
                    ds[base + i] += d[base + i];
                } else {
                    dc[base + i] = d[base + i];
                }
            }
        }
    }

    @Override
    public float ternaryForward(Tensor wHat, byte[] codes, Tensor w, int n) {
        return Quantize.ternaryForward(of(wHat), codes, of(w), n);
    }

    @Override
    public double squaredError(Tensor w, Tensor wHat, int n) {
        return Quantize.squaredError(of(w), of(wHat), n);
    }

    @Override
    public void squaredErrorBackward(Tensor dw, Tensor w, Tensor wHat, int n, float scale) {
        Quantize.squaredErrorBackward(of(dw), of(w), of(wHat), n, scale);
    }

    @Override
    public float bitLinearForward(Tensor out, Tensor preact, Tensor xHat, Tensor actScale, Tensor wHat, Tensor inp,
                                  Tensor weight, int N, int C, int OC, int actBits, boolean ternary, boolean relu2) {
        return BitLinear.forward(of(out), of(preact), of(xHat), of(actScale), of(wHat), of(inp), of(weight),
                N, C, OC, actBits, ternary, relu2);
    }

    @Override
    public void bitLinearBackward(Tensor dinp, Tensor dweight, Tensor dpreact, Tensor dout, Tensor preact,
                                  Tensor xHat, Tensor wHat, Tensor inp, Tensor weight, int N, int C, int OC,
                                  int actBits, boolean ternary, boolean relu2) {
        BitLinear.backward(of(dinp), of(dweight), of(dpreact), of(dout), of(preact), of(xHat), of(wHat), of(inp),
                of(weight), N, C, OC, actBits, ternary, relu2);
    }

    @Override
    public float hBitLinearForward(Tensor out, Tensor preact, Tensor zHat, Tensor actScale, Tensor wHat, Tensor z,
                                   Tensor lnOut, Tensor lnMean, Tensor lnRstd, Tensor inp, Tensor lnWeight,
                                   Tensor lnBias, Tensor weight, int N, int C, int P, int OC, float eps,
                                   int actBits, boolean ternary, boolean relu2) {
        return HBitLinear.forward(of(out), of(preact), of(zHat), of(actScale), of(wHat), of(z), of(lnOut),
                of(lnMean), of(lnRstd), of(inp), of(lnWeight), of(lnBias), of(weight), N, C, P, OC, eps,
                actBits, ternary, relu2);
    }

    @Override
    public void hBitLinearBackward(Tensor dinp, Tensor dlnWeight, Tensor dlnBias, Tensor dweight, Tensor dpreact,
                                   Tensor dz, Tensor dlnOut, Tensor dout, Tensor preact, Tensor zHat, Tensor wHat,
                                   Tensor z, Tensor lnMean, Tensor lnRstd, Tensor inp, Tensor lnWeight,
                                   Tensor weight, int N, int C, int P, int OC, int actBits, boolean ternary,
                                   boolean relu2) {
        HBitLinear.backward(of(dinp), of(dlnWeight), of(dlnBias), of(dweight), of(dpreact), of(dz), of(dlnOut),
                of(dout), of(preact), of(zHat), of(wHat), of(z), of(lnMean), of(lnRstd), of(inp), of(lnWeight),
                of(weight), N, C, P, OC, actBits, ternary, relu2);
    }

    @Override
    public void ropeForward(Tensor out, Tensor inp, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0) {
        Rope.forward(of(out), of(inp), of(cos), of(sin), B, T, NH, HS, pos0);
    }

    @Override
    public void ropeBackward(Tensor dinp, Tensor dout, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0) {
        Rope.backward(of(dinp), of(dout), of(cos), of(sin), B, T, NH, HS, pos0);
    }

    @Override
    public void attentionForward(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor dropMask,
                                 int B, int T, int NH, int NKV, int HS) {
        Attention.forward(of(out), of(probs), of(q), of(k), of(v), of(dropMask), B, T, NH, NKV, HS);
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor scratch, Tensor dout, Tensor q, Tensor k,
                                  Tensor v, Tensor probs, Tensor dropMask, int B, int T, int NH, int NKV, int HS) {
        Attention.backward(of(dq), of(dk), of(dv), of(scratch), of(dout), of(q), of(k), of(v), of(probs),
                of(dropMask), B, T, NH, NKV, HS);
    }

    @Override
    public void routerForward(Tensor p, Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h,
                              Tensor lnWeight, Tensor lnBias, Tensor w1, Tensor b1, Tensor w2, Tensor b2,
                              int N, int C, int H, float eps) {
        Router.forward(of(p), of(ln), of(lnMean), of(lnRstd), of(hidden), of(h), of(lnWeight), of(lnBias),
                of(w1), of(b1), of(w2), of(b2), N, C, H, eps);
    }

    @Override
    public void routerBackward(Tensor dh, Tensor dlnWeight, Tensor dlnBias, Tensor dw1, Tensor db1, Tensor dw2,
                               Tensor db2, Tensor dlogit, Tensor dhidden, Tensor dpre, Tensor dln, Tensor dp,
                               Tensor p, Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h,
                               Tensor lnWeight, Tensor w1, Tensor w2, int N, int C, int H) {
        Router.backward(of(dh), of(dlnWeight), of(dlnBias), of(dw1), of(db1), of(dw2), of(db2), of(dlogit),
                of(dhidden), of(dpre), of(dln), of(dp), of(p), of(ln), of(lnMean), of(lnRstd), of(hidden), of(h),
                of(lnWeight), of(w1), of(w2), N, C, H);
    }

    @Override
    public double routingLossForward(Tensor lbar, Tensor pExit, int L, int N, float target, boolean batchMean) {
        return RoutingLoss.forward(of(lbar), of(pExit), L, N, target, batchMean);
    }

    @Override
    public void routingLossBackward(Tensor dpExit, Tensor pExit, Tensor lbar, int L, int N, float target,
                                    boolean batchMean, float gradScale) {
        RoutingLoss.backward(of(dpExit), of(pExit), of(lbar), L, N, target, batchMean, gradScale);
    }

    @Override
    public double headLoss(Tensor x, Tensor head, int[] targets, int N, int C, int V, float gradScale, Tensor dx,
                           Tensor dhead, Tensor logits, Tensor dlogits, int chunkRows) {
        float[] xs = of(x), w = of(head), lg = of(logits), dlg = of(dlogits);
        float[] dxs = of(dx), dw = of(dhead);
        Check.len(targets, "targets", N, "N");
        Check.arg(chunkRows > 0, "chunkRows", chunkRows, "must be positive");
        Check.len(lg, logits.name(), (long) Math.min(chunkRows, N) * V, "min(chunkRows, N)*V");
        double loss = 0.0;
        // Row chunks are views: the kernels take whole arrays, so each chunk is copied in and out of
        // chunk-sized scratch. The reference favours plain code over speed.
        float[] xChunk = new float[Math.min(chunkRows, N) * C];
        float[] dxChunk = dxs == null ? null : new float[xChunk.length];
        int[] tChunk = new int[Math.min(chunkRows, N)];
        for (int r0 = 0; r0 < N; r0 += chunkRows) {
            int R = Math.min(chunkRows, N - r0);
            System.arraycopy(xs, r0 * C, xChunk, 0, R * C);
            System.arraycopy(targets, r0, tChunk, 0, R);
            Matmul.forward(lg, xChunk, w, null, R, C, V);
            loss += CrossEntropy.forwardBackward(lg, dxs == null ? null : dlg, tChunk, R, V, gradScale);
            if (dxs != null) {
                java.util.Arrays.fill(dxChunk, 0, R * C, 0.0f);
                Matmul.backward(dxChunk, dw, null, dlg, xChunk, w, R, C, V);
                for (int i = 0; i < R * C; i++) {
                    dxs[r0 * C + i] += dxChunk[i];
                }
            }
        }
        return loss;
    }

    @Override
    public double sumSquares(Tensor g, int n) {
        return GradClip.sumSquares(of(g), n);
    }

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, float lr, float beta1, float beta2,
                      float eps, float weightDecay, int step) {
        AdamW.update(of(param), of(grad), of(m), of(v), n, lr, beta1, beta2, eps, weightDecay, step);
    }
}
