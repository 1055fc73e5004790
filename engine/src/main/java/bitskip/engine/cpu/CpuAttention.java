package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;
import static bitskip.engine.cpu.Vec.GRAIN;
import static bitskip.engine.cpu.Vec.S;
import static bitskip.engine.cpu.Vec.VL;
import static bitskip.engine.cpu.Vec.ld;
import static bitskip.engine.cpu.Vec.st;

import bitskip.engine.AttentionActs;
import bitskip.engine.AttentionShape;
import bitskip.engine.Heads;
import bitskip.engine.Span;
import bitskip.engine.Tensor;
import bitskip.kernels.Check;
import java.nio.ByteBuffer;
import jdk.incubator.vector.FloatVector;

/**
 * Attention's own primitives: RoPE (bit-exact) and the causal softmax rows of the (T, T) score blocks,
 * forward (exp on float lanes from exact IEEE operations, {@link VectorMath}) and backward. The products
 * around them are {@link CpuLinear}'s sgemm: in float32 each (sample, head)'s products and softmax run on one thread
 * ({@link #forward}, {@link #backward}); in bf16 {@code Backend.attentionForward/Backward} compose them.
 */
final class CpuAttention {
    private final CpuContext cx;
    private final CpuMemory memory;
    /** Per pool thread, two (T, T) blocks of {@link #forward}/{@link #backward}'s work (grows, never shrinks). */
    private CpuTensor work;

    CpuAttention(CpuContext cx, CpuMemory memory) {
        this.cx = cx;
        this.memory = memory;
    }

    void rope(Tensor outT, Tensor inT, Tensor cosT, Tensor sinT, Heads hd, int pos0, boolean backward) {
        Check.arg(pos0 >= 0, "pos0", pos0, "must be non-negative");
        int T = hd.T(), NH = hd.heads(), HS = hd.HS(), half = HS / 2;
        CpuTensor o = of(outT).need(hd.size(), "B*T*NH*HS");
        CpuTensor x = of(inT).need(hd.size(), "B*T*NH*HS");
        CpuTensor cs = of(cosT).need((long) (pos0 + T) * half, "(pos0+T)*HS/2");
        CpuTensor sn = of(sinT).need((long) (pos0 + T) * half, "(pos0+T)*HS/2");
        boolean vector = cx.vector;
        cx.pool.forRange(hd.B() * T, Math.max(1, GRAIN / (NH * HS)), (p, lo, hi) -> {
            ByteBuffer ob = o.bb, xb = x.bb, cb = cs.bb, sb = sn.bb;
            for (int bt = lo; bt < hi; bt++) {
                int tab = (pos0 + bt % T) * half;
                for (int h = 0; h < NH; h++) {
                    int base = (bt * NH + h) * HS;
                    int j = 0;
                    if (vector) {
                        for (; j < S.loopBound(half); j += VL) {
                            FloatVector c = ld(cb, tab + j), s = ld(sb, tab + j);
                            FloatVector a = ld(xb, base + j), b = ld(xb, base + j + half);
                            if (backward) {
                                st(ld(ob, base + j).add(a.mul(c).add(b.mul(s))), ob, base + j);
                                st(ld(ob, base + j + half).add(a.neg().mul(s).add(b.mul(c))), ob, base + j + half);
                            } else {
                                st(a.mul(c).sub(b.mul(s)), ob, base + j);
                                st(b.mul(c).add(a.mul(s)), ob, base + j + half);
                            }
                        }
                    }
                    for (; j < half; j++) {
                        float c = cb.getFloat((tab + j) << 2), s = sb.getFloat((tab + j) << 2);
                        float a = xb.getFloat((base + j) << 2), b = xb.getFloat((base + j + half) << 2);
                        int i1 = (base + j) << 2, i2 = (base + j + half) << 2;
                        if (backward) {
                            ob.putFloat(i1, ob.getFloat(i1) + (a * c + b * s));
                            ob.putFloat(i2, ob.getFloat(i2) + (-a * s + b * c));
                        } else {
                            ob.putFloat(i1, a * c - b * s);
                            ob.putFloat(i2, b * c + a * s);
                        }
                    }
                }
            }
        });
    }

    /** The causal softmax of rows of (T, T) blocks, in place (Attention.softmaxRows). */
    void softmaxForward(Span xs, int rows, int T) {
        Check.positive("rows", rows, "T", T);
        CpuTensor x = of(xs.tensor()).need(xs.offset() + (long) rows * T, "offset + rows*T");
        int off = xs.offset();
        boolean vector = cx.vector;
        cx.pool.forRange(rows, 64, (part, lo, hi) -> softmaxRows(x.bb, off, lo, hi, T, vector));
    }

    /** Rows [lo, hi) of {@link #softmaxForward} from element off of P, on the calling thread. */
    private static void softmaxRows(ByteBuffer P, int off, int lo, int hi, int T, boolean vector) {
        for (int r = lo; r < hi; r++) {
            int t = r % T, prow = off + r * T;
            float max = vector ? maxOf(P, prow, t + 1) : Float.NEGATIVE_INFINITY;
            for (int s = vector ? S.loopBound(t + 1) : 0; s <= t; s++) {
                max = Math.max(max, P.getFloat((prow + s) << 2));
            }
            float sum = 0.0f;
            int s = 0;
            if (vector) {
                sum = expSum(P, prow, S.loopBound(t + 1), max);
                s = S.loopBound(t + 1);
            }
            for (; s <= t; s++) {
                float e = (float) Math.exp(P.getFloat((prow + s) << 2) - max);
                P.putFloat((prow + s) << 2, e);
                sum += e;
            }
            float inv = 1.0f / sum;
            s = 0;
            if (vector) {
                s = scale(P, prow, S.loopBound(t + 1), inv);
            }
            for (; s <= t; s++) {
                P.putFloat((prow + s) << 2, P.getFloat((prow + s) << 2) * inv);
            }
            for (s = t + 1; s < T; s++) {
                P.putFloat((prow + s) << 2, 0.0f);
            }
        }
    }

    // The row loops below are small methods exchanging only numbers and buffers (no vector crosses a method
    // boundary: see CpuLosses). max and the scaling are exact lane by lane, so they give the scalar loops' bits.

    /** The max over lanes of the whole vectors of [row, row + n) (−∞ when there are none). */
    private static float maxOf(ByteBuffer P, int row, int n) {
        FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int s = 0; s < S.loopBound(n); s += VL) {
            mx = mx.max(ld(P, row + s));
        }
        return mx.reduceLanes(jdk.incubator.vector.VectorOperators.MAX);
    }

    /** exp(x − max) over [row, row + whole), stored, and their sum in lanes added in {@link Lanes}' order. */
    private static float expSum(ByteBuffer P, int row, int whole, float max) {
        FloatVector acc = FloatVector.zero(S);
        for (int s = 0; s < whole; s += VL) {
            FloatVector e = VectorMath.expNonPositive(ld(P, row + s).sub(max));
            st(e, P, row + s);
            acc = acc.add(e);
        }
        return Lanes.sum(acc);
    }

    /** [row, row + whole) times inv, in place; returns whole. */
    private static int scale(ByteBuffer P, int row, int whole, float inv) {
        for (int s = 0; s < whole; s += VL) {
            st(ld(P, row + s).mul(inv), P, row + s);
        }
        return whole;
    }

    /** d = p∘(d − rowsum(p∘d))·scale on the causal part, 0 after it, in place (Attention.softmaxBackwardRows). */
    void softmaxBackward(Span ds, Span ps, int rows, int T, float scale) {
        Check.positive("rows", rows, "T", T);
        CpuTensor d = of(ds.tensor()).need(ds.offset() + (long) rows * T, "d offset + rows*T");
        CpuTensor p = of(ps.tensor()).need(ps.offset() + (long) rows * T, "p offset + rows*T");
        int dOff = ds.offset(), pOff = ps.offset();
        boolean vector = cx.vector;
        cx.pool.forRange(rows, 64, (part, lo, hi) -> softmaxBackwardRows(d.bb, dOff, p.bb, pOff, lo, hi, T, scale, vector));
    }

    /**
     * Rows [lo, hi) of {@link #softmaxBackward}, on the calling thread. rowsum(p∘d) stays one float sum in column
     * order, as the reference; the update is exact lane by lane.
     */
    private static void softmaxBackwardRows(ByteBuffer D, int dOff, ByteBuffer P, int pOff, int lo, int hi, int T, float scale,
                                            boolean vector) {
        for (int r = lo; r < hi; r++) {
            int t = r % T, drow = dOff + r * T, prow = pOff + r * T;
            float pdp = 0.0f;
            for (int s = 0; s <= t; s++) {
                pdp += P.getFloat((prow + s) << 2) * D.getFloat((drow + s) << 2);
            }
            int s = vector ? softmaxGrad(D, drow, P, prow, S.loopBound(t + 1), pdp, scale) : 0;
            for (; s <= t; s++) {
                D.putFloat((drow + s) << 2, P.getFloat((prow + s) << 2) * (D.getFloat((drow + s) << 2) - pdp) * scale);
            }
            for (s = t + 1; s < T; s++) {
                D.putFloat((drow + s) << 2, 0.0f);
            }
        }
    }

    /** d = p∘(d − pdp)·scale over [0, whole) of the rows; returns whole. */
    private static int softmaxGrad(ByteBuffer D, int drow, ByteBuffer P, int prow, int whole, float pdp, float scale) {
        for (int s = 0; s < whole; s += VL) {
            st(ld(P, prow + s).mul(ld(D, drow + s).sub(pdp)).mul(scale), D, drow + s);
        }
        return whole;
    }

    /** Each thread's two (T, T) blocks of work, at threads·2·T·T floats. */
    private CpuTensor work(int T) {
        return work = memory.grown(work, "scratch.attention", (long) cx.threads * 2 * T * T);
    }

    /**
     * Backend.attentionForward's operations, in its order per (sample, head), with the pairs split over the pool's
     * threads and each pair's products and softmax run on its thread alone: the pairs write disjoint blocks of
     * probs and out. The default composition cut every 256 × 256 × 64 product of small (and each softmax) into two
     * blocks with a wake-up of the pool for each, 4 per pair and 32 pairs per layer. Each thread has its own work
     * block for the dropout-weighted probabilities. Float32 products only (bf16 keeps the default composition).
     */
    void forward(CpuLinear linear, AttentionShape s, AttentionActs a) {
        int T = s.T(), HS = s.HS(), NH = s.NH(), NKV = s.NKV(), group = NH / NKV, TT = T * T;
        int qld = NH * HS, kvld = NKV * HS;
        long nq = (long) s.B() * T * qld, nkv = (long) s.B() * T * kvld, np = (long) s.B() * NH * TT;
        CpuTensor q = of(a.q()).need(nq, "q B*T*NH*HS"), k = of(a.k()).need(nkv, "k B*T*NKV*HS"), v = of(a.v()).need(nkv, "v B*T*NKV*HS");
        CpuTensor probs = of(a.probs()).need(np, "probs B*NH*T*T"), out = of(a.out()).need(nq, "out B*T*NH*HS");
        CpuTensor mask = a.dropMask() == null ? null : of(a.dropMask()).need(np, "dropMask B*NH*T*T"), w = work(T);
        boolean vector = cx.vector;
        float scale = s.scale();
        cx.pool.forRange(s.B() * NH, 1, (t, lo, hi) -> {
            for (int bh = lo; bh < hi; bh++) {
                int b = bh / NH, h = bh % NH;
                long qOff = (long) (b * T * NH + h) * HS, kvOff = (long) (b * T * NKV + h / group) * HS, pOff = (long) bh * TT;
                linear.sgemmOn(t, false, true, T, T, HS, scale, q, qOff, qld, k, kvOff, kvld, 0.0f, probs, pOff, T);
                softmaxRows(probs.bb, (int) pOff, 0, T, T, vector);
                CpuTensor weights = probs;
                long wOff = pOff;
                if (mask != null) {
                    wOff = (long) t * 2 * TT;
                    multiply(w.bb, (int) wOff, probs.bb, (int) pOff, mask.bb, (int) pOff, TT, vector);
                    weights = w;
                }
                linear.sgemmOn(t, false, false, T, HS, T, 1.0f, weights, wOff, T, v, kvOff, kvld, 0.0f, out, qOff, qld);
            }
        });
    }

    /**
     * Backend.attentionBackward's operations, in its order per (sample, KV head) and over the query heads of its
     * group, with the (sample, KV head) pairs split over the threads: each pair accumulates into its own rows of dk
     * and dv and its heads' rows of dq, so the sums keep their order.
     */
    void backward(CpuLinear linear, AttentionShape s, AttentionActs a, Tensor doutT, Tensor dqT, Tensor dkT, Tensor dvT) {
        int T = s.T(), HS = s.HS(), NH = s.NH(), NKV = s.NKV(), group = NH / NKV, TT = T * T;
        int qld = NH * HS, kvld = NKV * HS;
        long nq = (long) s.B() * T * qld, nkv = (long) s.B() * T * kvld, np = (long) s.B() * NH * TT;
        CpuTensor q = of(a.q()).need(nq, "q B*T*NH*HS"), k = of(a.k()).need(nkv, "k B*T*NKV*HS"), v = of(a.v()).need(nkv, "v B*T*NKV*HS");
        CpuTensor probs = of(a.probs()).need(np, "probs B*NH*T*T"), dout = of(doutT).need(nq, "dout B*T*NH*HS");
        CpuTensor dq = of(dqT).need(nq, "dq B*T*NH*HS"), dk = of(dkT).need(nkv, "dk B*T*NKV*HS"), dv = of(dvT).need(nkv, "dv B*T*NKV*HS");
        CpuTensor mask = a.dropMask() == null ? null : of(a.dropMask()).need(np, "dropMask B*NH*T*T"), w = work(T);
        boolean vector = cx.vector;
        float scale = s.scale();
        cx.pool.forRange(s.B() * NKV, 1, (t, lo, hi) -> {
            int dS = t * 2 * TT, masked = dS + TT;
            for (int bk = lo; bk < hi; bk++) {
                int b = bk / NKV, kvh = bk % NKV;
                long kvOff = (long) (b * T * NKV + kvh) * HS;
                for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                    long qOff = (long) (b * T * NH + h) * HS;
                    int pOff = (b * NH + h) * TT;
                    CpuTensor weights = probs;
                    int wOff = pOff;
                    if (mask != null) {
                        multiply(w.bb, masked, probs.bb, pOff, mask.bb, pOff, TT, vector);
                        weights = w;
                        wOff = masked;
                    }
                    linear.sgemmOn(t, true, false, T, HS, T, 1.0f, weights, wOff, T, dout, qOff, qld, 1.0f, dv, kvOff, kvld);
                    linear.sgemmOn(t, false, true, T, T, HS, 1.0f, dout, qOff, qld, v, kvOff, kvld, 0.0f, w, dS, T);
                    if (mask != null) {
                        multiply(w.bb, dS, w.bb, dS, mask.bb, pOff, TT, vector);
                    }
                    softmaxBackwardRows(w.bb, dS, probs.bb, pOff, 0, T, T, scale, vector);
                    linear.sgemmOn(t, false, false, T, HS, T, 1.0f, w, dS, T, k, kvOff, kvld, 1.0f, dq, qOff, qld);
                    linear.sgemmOn(t, true, false, T, HS, T, 1.0f, w, dS, T, q, qOff, qld, 1.0f, dk, kvOff, kvld);
                }
            }
        });
    }

    /** dst[i] = a[i]·b[i] for i &lt; n (offsets in floats; dst may be a), on the calling thread. */
    private static void multiply(ByteBuffer dst, int d, ByteBuffer a, int ao, ByteBuffer b, int bo, int n, boolean vector) {
        int i = 0;
        if (vector) {
            for (; i < S.loopBound(n); i += VL) {
                st(ld(a, ao + i).mul(ld(b, bo + i)), dst, d + i);
            }
        }
        for (; i < n; i++) {
            dst.putFloat((d + i) << 2, a.getFloat((ao + i) << 2) * b.getFloat((bo + i) << 2));
        }
    }
}
