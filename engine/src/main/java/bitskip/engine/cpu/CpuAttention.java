package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;
import static bitskip.engine.cpu.Vec.GRAIN;
import static bitskip.engine.cpu.Vec.S;
import static bitskip.engine.cpu.Vec.VL;
import static bitskip.engine.cpu.Vec.ld;
import static bitskip.engine.cpu.Vec.st;

import bitskip.engine.Heads;
import bitskip.engine.Span;
import bitskip.engine.Tensor;
import bitskip.kernels.Check;
import java.nio.ByteBuffer;
import jdk.incubator.vector.FloatVector;

/**
 * Attention's own primitives: RoPE (bit-exact) and the causal softmax rows of the (T, T) score blocks,
 * forward (exp on float lanes from exact IEEE operations, {@link VectorMath}) and backward. The products
 * around them are {@link CpuLinear}'s sgemm, composed by {@code Backend.attentionForward/Backward}.
 */
final class CpuAttention {
    private final CpuContext cx;

    CpuAttention(CpuContext cx) {
        this.cx = cx;
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
        cx.pool.forRange(rows, 64, (part, lo, hi) -> {
            ByteBuffer P = x.bb;
            for (int r = lo; r < hi; r++) {
                int t = r % T, prow = off + r * T;
                float max = Float.NEGATIVE_INFINITY;
                for (int s = 0; s <= t; s++) {
                    max = Math.max(max, P.getFloat((prow + s) << 2));
                }
                float sum = 0.0f;
                int s = 0;
                if (vector) {
                    FloatVector acc = FloatVector.zero(S);
                    for (; s < S.loopBound(t + 1); s += VL) {
                        FloatVector e = VectorMath.expNonPositive(ld(P, prow + s).sub(max));
                        st(e, P, prow + s);
                        acc = acc.add(e);
                    }
                    sum = Lanes.sum(acc);
                }
                for (; s <= t; s++) {
                    float e = (float) Math.exp(P.getFloat((prow + s) << 2) - max);
                    P.putFloat((prow + s) << 2, e);
                    sum += e;
                }
                float inv = 1.0f / sum;
                for (s = 0; s <= t; s++) {
                    P.putFloat((prow + s) << 2, P.getFloat((prow + s) << 2) * inv);
                }
                for (s = t + 1; s < T; s++) {
                    P.putFloat((prow + s) << 2, 0.0f);
                }
            }
        });
    }

    /** d = p∘(d − rowsum(p∘d))·scale on the causal part, 0 after it, in place (Attention.softmaxBackwardRows). */
    void softmaxBackward(Span ds, Span ps, int rows, int T, float scale) {
        Check.positive("rows", rows, "T", T);
        CpuTensor d = of(ds.tensor()).need(ds.offset() + (long) rows * T, "d offset + rows*T");
        CpuTensor p = of(ps.tensor()).need(ps.offset() + (long) rows * T, "p offset + rows*T");
        int dOff = ds.offset(), pOff = ps.offset();
        cx.pool.forRange(rows, 64, (part, lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int t = r % T, drow = dOff + r * T, prow = pOff + r * T;
                float pdp = 0.0f;
                for (int s = 0; s <= t; s++) {
                    pdp += p.fb.get(prow + s) * d.fb.get(drow + s);
                }
                for (int s = 0; s <= t; s++) {
                    d.fb.put(drow + s, p.fb.get(prow + s) * (d.fb.get(drow + s) - pdp) * scale);
                }
                for (int s = t + 1; s < T; s++) {
                    d.fb.put(drow + s, 0.0f);
                }
            }
        });
    }
}
