package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;
import static bitskip.engine.cpu.Vec.GRAIN;
import static bitskip.engine.cpu.Vec.RINT_MAGIC;
import static bitskip.engine.cpu.Vec.S;
import static bitskip.engine.cpu.Vec.VL;
import static bitskip.engine.cpu.Vec.ld;
import static bitskip.engine.cpu.Vec.st;
import static bitskip.engine.cpu.Vec.vbound;

import bitskip.engine.Norm;
import bitskip.engine.NormStats;
import bitskip.engine.Tensor;
import bitskip.kernels.Check;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The row-wise ops: LayerNorm forward and backward, the Walsh–Hadamard transform, and the per-row activation
 * quantizer. Rows are split over the pool; a row's statistics are vector sums (lanes added in a fixed order,
 * {@link Lanes}), within the LayerNorm tolerance of the reference; the quantizer and the FWHT are bit-exact.
 */
final class CpuNorms {
    private final CpuContext cx;

    CpuNorms(CpuContext cx) {
        this.cx = cx;
    }

    // ---- LayerNorm ---------------------------------------------------------------------------------------

    void layerNormForward(Tensor out, NormStats saved, Tensor inp, Norm params, int N, int C, float eps) {
        Check.positive("N", N, "C", C);
        CpuTensor o = of(out).need((long) N * C, "N*C");
        CpuTensor m = of(saved.mean()).need(N, "N");
        CpuTensor r = of(saved.rstd()).need(N, "N");
        CpuTensor x = of(inp).need((long) N * C, "N*C");
        CpuTensor w = params.affine() ? of(params.weight()).need(C, "C") : null;
        CpuTensor b = params.affine() ? of(params.bias()).need(C, "C") : null;
        Check.arg(eps > 0.0f, "eps", eps, "must be positive");
        cx.pool.forRange(N, Math.max(1, GRAIN / C), (part, lo, hi) -> {
            for (int n = lo; n < hi; n++) {
                lnRow(o.bb, m.fb, r.fb, x.bb, w, b, n, C, eps);
            }
        });
    }

    private void lnRow(ByteBuffer out, FloatBuffer mean, FloatBuffer rstd, ByteBuffer x, CpuTensor w, CpuTensor b,
                       int n, int C, float eps) {
        int row = n * C;
        int vb = cx.vector ? S.loopBound(C) : 0;
        float sum = 0.0f;
        int c = 0;
        if (vb > 0) {
            FloatVector acc = FloatVector.zero(S);
            for (; c < vb; c += VL) {
                acc = acc.add(ld(x, row + c));
            }
            sum = Lanes.sum(acc);
        }
        for (; c < C; c++) {
            sum += x.getFloat((row + c) << 2);
        }
        float m = sum / C;
        float var = 0.0f;
        c = 0;
        if (vb > 0) {
            FloatVector acc = FloatVector.zero(S);
            for (; c < vb; c += VL) {
                FloatVector d = ld(x, row + c).sub(m);
                acc = acc.add(d.mul(d));
            }
            var = Lanes.sum(acc);
        }
        for (; c < C; c++) {
            float d = x.getFloat((row + c) << 2) - m;
            var += d * d;
        }
        var = var / C;
        float s = (float) (1.0 / Math.sqrt(var + eps));
        c = 0;
        for (; c < vb; c += VL) {
            FloatVector v = ld(x, row + c).sub(m).mul(s);
            if (w != null) {
                v = v.mul(ld(w.bb, c)).add(ld(b.bb, c));
            }
            st(v, out, row + c);
        }
        for (; c < C; c++) {
            float norm = (x.getFloat((row + c) << 2) - m) * s;
            out.putFloat((row + c) << 2, w == null ? norm : norm * w.fb.get(c) + b.fb.get(c));
        }
        mean.put(n, m);
        rstd.put(n, s);
    }

    void layerNormBackward(Tensor dinp, Norm grads, Tensor dout, Tensor inp, Norm params, NormStats saved, int N,
                           int C) {
        Check.positive("N", N, "C", C);
        CpuTensor dx = of(dinp).need((long) N * C, "N*C");
        CpuTensor dy = of(dout).need((long) N * C, "N*C");
        CpuTensor x = of(inp).need((long) N * C, "N*C");
        CpuTensor m = of(saved.mean()).need(N, "N");
        CpuTensor r = of(saved.rstd()).need(N, "N");
        CpuTensor w = null, dw = null, db = null;
        if (params.affine()) {
            w = of(params.weight()).need(C, "C");
            dw = of(grads.weight()).need(C, "C");
            db = of(grads.bias()).need(C, "C");
        } else {
            Check.arg(!grads.affine(), "dweight/dbias", "non-null", "must be null for a parameter-free LayerNorm (weight null)");
        }
        final CpuTensor fw = w, fdw = dw, fdb = db;
        // pass 1, rows: dinp
        cx.pool.forRange(N, Math.max(1, GRAIN / C), (part, lo, hi) -> {
            for (int n = lo; n < hi; n++) {
                lnBackRow(dx.bb, dy.bb, x.bb, fw, m.fb.get(n), r.fb.get(n), n, C);
            }
        });
        // pass 2, columns: dweight, dbias summed over rows in row order (as the kernel, element by element)
        if (fw != null) {
            boolean vector = cx.vector;
            cx.pool.forRange(C, 32, (part, c0, c1) -> {
                for (int n = 0; n < N; n++) {
                    int row = n * C;
                    float mn = m.fb.get(n), s = r.fb.get(n);
                    int c = c0;
                    if (vector) {
                        for (; c < vbound(c0, c1); c += VL) {
                            FloatVector g = ld(dy.bb, row + c);
                            FloatVector norm = ld(x.bb, row + c).sub(mn).mul(s);
                            st(ld(fdw.bb, c).add(g.mul(norm)), fdw.bb, c);
                            st(ld(fdb.bb, c).add(g), fdb.bb, c);
                        }
                    }
                    for (; c < c1; c++) {
                        float g = dy.fb.get(row + c);
                        float norm = (x.fb.get(row + c) - mn) * s;
                        fdw.fb.put(c, fdw.fb.get(c) + g * norm);
                        fdb.fb.put(c, fdb.fb.get(c) + g);
                    }
                }
            });
        }
    }

    private void lnBackRow(ByteBuffer dx, ByteBuffer dy, ByteBuffer x, CpuTensor w, float m, float s, int n, int C) {
        int row = n * C;
        int vb = cx.vector ? S.loopBound(C) : 0;
        ByteBuffer wb = w == null ? null : w.bb;
        float dnormMean = 0.0f, dnormNormMean = 0.0f;
        if (vb > 0) {
            long sums = lnBackSums(dy, x, wb, m, s, row, vb);
            dnormMean = Float.intBitsToFloat((int) (sums >>> 32));
            dnormNormMean = Float.intBitsToFloat((int) sums);
        }
        for (int c = vb; c < C; c++) {
            float norm = (x.getFloat((row + c) << 2) - m) * s;
            float g = dy.getFloat((row + c) << 2);
            float dnorm = w == null ? g : g * w.fb.get(c);
            dnormMean += dnorm;
            dnormNormMean += dnorm * norm;
        }
        dnormMean = dnormMean / C;
        dnormNormMean = dnormNormMean / C;
        if (vb > 0) {
            lnBackApply(dx, dy, x, wb, m, s, dnormMean, dnormNormMean, row, vb);
        }
        for (int c = vb; c < C; c++) {
            float norm = (x.getFloat((row + c) << 2) - m) * s;
            float g = dy.getFloat((row + c) << 2);
            float dnorm = w == null ? g : g * w.fb.get(c);
            int at = (row + c) << 2;
            dx.putFloat(at, dx.getFloat(at) + s * (dnorm - dnormMean - norm * dnormNormMean));
        }
    }

    // The two vector passes of a row's LayerNorm backward are methods of their own that pass only numbers: in one
    // method C2 (JDK 17) reached its inlining node cutoff and boxed the second pass's vectors (JFR: the largest
    // source of garbage in a training step after the cross-entropy's).

    /** Lanes.sum of dnorm and of dnorm·norm over [0, vb), as the bits of two floats (high, low) in a long. */
    private static long lnBackSums(ByteBuffer dy, ByteBuffer x, ByteBuffer w, float m, float s, int row, int vb) {
        FloatVector a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
        for (int c = 0; c < vb; c += VL) {
            FloatVector norm = ld(x, row + c).sub(m).mul(s);
            FloatVector dnorm = w == null ? ld(dy, row + c) : ld(dy, row + c).mul(ld(w, c));
            a1 = a1.add(dnorm);
            a2 = a2.add(dnorm.mul(norm));
        }
        return ((long) Float.floatToRawIntBits(Lanes.sum(a1)) << 32) | (Float.floatToRawIntBits(Lanes.sum(a2)) & 0xFFFFFFFFL);
    }

    /** dx += s·(dnorm − mean(dnorm) − norm·mean(dnorm·norm)) over [0, vb). */
    private static void lnBackApply(ByteBuffer dx, ByteBuffer dy, ByteBuffer x, ByteBuffer w, float m, float s,
                                    float dnormMean, float dnormNormMean, int row, int vb) {
        for (int c = 0; c < vb; c += VL) {
            FloatVector norm = ld(x, row + c).sub(m).mul(s);
            FloatVector dnorm = w == null ? ld(dy, row + c) : ld(dy, row + c).mul(ld(w, c));
            FloatVector t = dnorm.sub(dnormMean).sub(norm.mul(dnormNormMean)).mul(s);
            st(ld(dx, row + c).add(t), dx, row + c);
        }
    }

    // ---- the Walsh–Hadamard transform -------------------------------------------------------------------

    void fwht(Tensor x, int N, int P) {
        Check.positive("N", N, "P", P);
        Check.arg((P & (P - 1)) == 0, "P", P, "must be a power of two");
        CpuTensor z = of(x).need((long) N * P, "N*P");
        cx.pool.forRange(N, Math.max(1, GRAIN / P), (part, lo, hi) -> fwhtRows(z.bb, lo, hi, P));
    }

    /** Rows [lo, hi) of (N, P): the orthonormal FWHT in place, Hadamard.forward's order of operations. */
    private void fwhtRows(ByteBuffer z, int lo, int hi, int P) {
        float scale = (float) (1.0 / Math.sqrt(P));
        boolean vector = cx.vector;
        for (int n = lo; n < hi; n++) {
            int row = n * P;
            int h0 = 1;
            if (vector && P >= VL && VectorFwht.S == S) {
                innerStages(z, row, P);
                h0 = VL;
            }
            for (int h = h0; h < P; h *= 2) {
                for (int i = 0; i < P; i += 2 * h) {
                    int j = i;
                    if (vector && h >= VL) {
                        for (; j < i + h; j += VL) {
                            FloatVector a = ld(z, row + j), b = ld(z, row + j + h);
                            st(a.add(b), z, row + j);
                            st(a.sub(b), z, row + j + h);
                        }
                    }
                    for (; j < i + h; j++) {
                        float a = z.getFloat((row + j) << 2), b = z.getFloat((row + j + h) << 2);
                        z.putFloat((row + j) << 2, a + b);
                        z.putFloat((row + j + h) << 2, a - b);
                    }
                }
            }
            int p = 0;
            if (vector) {
                for (; p < S.loopBound(P); p += VL) {
                    st(ld(z, row + p).mul(scale), z, row + p);
                }
            }
            for (; p < P; p++) {
                z.putFloat((row + p) << 2, z.getFloat((row + p) << 2) * scale);
            }
        }
    }

    /** The butterfly stages h < VL of one row, in registers ({@link VectorFwht}); its own method (C2's node budget). */
    private static void innerStages(ByteBuffer z, int row, int P) {
        for (int j = 0; j < P; j += VL) {
            st(VectorFwht.innerStages(ld(z, row + j)), z, row + j);
        }
    }

    // ---- the activation quantizer ----------------------------------------------------------------------

    /** Per-row absmax quantization (Quantize.activationForward, bit for bit). */
    void quantizeActivations(Tensor out, Tensor scale, Tensor inp, int N, int C, int bits) {
        Check.positive("N", N, "C", C);
        Check.arg(bits >= 2 && bits <= 8, "bits", bits, "must be in [2, 8] (codes are signed bytes, Q >= 1)");
        CpuTensor o = of(out).need((long) N * C, "N*C");
        CpuTensor sc = of(scale).need(N, "N");
        CpuTensor in = of(inp).need((long) N * C, "N*C");
        float Q = (float) ((1 << (bits - 1)) - 1);
        boolean vector = cx.vector;
        cx.pool.forRange(N, Math.max(1, GRAIN / C), (part, lo, hi) -> {
            ByteBuffer x = in.bb, ob = o.bb;
            int vb = vector ? S.loopBound(C) : 0;
            for (int n = lo; n < hi; n++) {
                int row = n * C;
                float s = 0.0f;
                int c = 0;
                if (vb > 0) {
                    FloatVector mx = FloatVector.zero(S);
                    for (; c < vb; c += VL) {
                        mx = mx.max(ld(x, row + c).abs());
                    }
                    s = mx.reduceLanes(VectorOperators.MAX);
                }
                for (; c < C; c++) {
                    float a = Math.abs(x.getFloat((row + c) << 2));
                    if (a > s) {
                        s = a;
                    }
                }
                if (s < 1e-6f) {
                    s = 1e-6f;
                }
                c = 0;
                for (; c < vb; c += VL) {
                    FloatVector q = ld(x, row + c).mul(Q).div(s);
                    q = q.add(RINT_MAGIC).sub(RINT_MAGIC).min(Q).max(-Q);
                    st(q.mul(s).div(Q), ob, row + c);
                }
                for (; c < C; c++) {
                    float q = (float) Math.rint((Q * x.getFloat((row + c) << 2)) / s);
                    if (q > Q) {
                        q = Q;
                    } else if (q < -Q) {
                        q = -Q;
                    }
                    ob.putFloat((row + c) << 2, (s * q) / Q);
                }
                sc.fb.put(n, s);
            }
        });
    }
}
