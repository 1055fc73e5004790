package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;
import static bitskip.engine.cpu.Vec.GRAIN;
import static bitskip.engine.cpu.Vec.S;
import static bitskip.engine.cpu.Vec.VL;
import static bitskip.engine.cpu.Vec.ld;
import static bitskip.engine.cpu.Vec.st;
import static bitskip.engine.cpu.Vec.vbound;

import bitskip.engine.AdamStep;
import bitskip.engine.Pointwise;
import bitskip.engine.Span;
import bitskip.engine.Tensor;
import bitskip.kernels.Check;
import bitskip.kernels.Dropout;
import java.nio.ByteBuffer;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/**
 * The element-wise ops (the {@link Pointwise} enum, the dropout mask, AdamW), split over the pool in
 * chunks of {@link Vec#GRAIN} elements, each with a Vector API loop and a scalar tail (or scalar loops when
 * the vector path is off). Both compute each element with the same float operations as the reference, so
 * every op is bit-exact, whatever the split.
 */
final class CpuElementwise {
    private final CpuContext cx;

    CpuElementwise(CpuContext cx) {
        this.cx = cx;
    }

    void pointwise(Pointwise op, Span out, Span a, Span b, int n, float s) {
        Check.positive("n", n);
        if (op == Pointwise.FILL && Float.floatToRawIntBits(s) == 0) {
            zero(out, n);
            return;
        }
        ByteBuffer o = buffer(out, n, "out"), x = op.readsA() ? buffer(a, n, "a") : null;
        ByteBuffer y = op.readsB() ? buffer(b, n, "b") : null;
        int oo = out.offset(), ao = op.readsA() ? a.offset() : 0, bo = op.readsB() ? b.offset() : 0;
        boolean vector = cx.vector;
        cx.pool.forRange(n, GRAIN, (w, lo, hi) -> {
            int i = lo;
            if (vector) {
                i = vectorRange(op, o, oo, x, ao, y, bo, s, lo, vbound(lo, hi));
            }
            for (; i < hi; i++) {
                scalar(op, o, (oo + i) << 2, x, (ao + i) << 2, y, (bo + i) << 2, s);
            }
        });
    }

    /**
     * n floats of +0.0 from out: the C library's memset per chunk (the bytes of +0.0f are all zero). A gradient
     * buffer is cleared before every op that adds into it (~190 calls per small step); the vector store loop, each
     * store bounds-checked against the ByteBuffer, cleared 7–8 GB/s.
     */
    private void zero(Span out, int n) {
        CpuTensor t = of(out.tensor()).need(out.offset() + (long) n, "out offset + n");
        long base = (long) out.offset() << 2;
        cx.pool.forRange(n, GRAIN, (w, lo, hi) ->
                Pointer.memset(new BytePointer(t.ptr).position(base + ((long) lo << 2)), 0, (long) (hi - lo) << 2));
    }

    private static ByteBuffer buffer(Span sp, int n, String what) {
        return of(sp.tensor()).need(sp.offset() + (long) n, what + " offset + n").bb;
    }

    /**
     * Elements [lo, end) in whole vectors with op's loop; returns end, or lo for an op with no vector loop (the
     * sigmoids' exp is evaluated in double: scalar only).
     *
     * <p>One small method per op, called through a table: with every op's loop in one method, C2 (JDK 17)
     * reached its node-count cutoff while inlining the Vector API's operations and compiled the rest as calls
     * that box each vector (gigabytes of garbage per training step, measured with a JFR allocation profile).
     * Here each op's loop is a compilation unit of its own, and the call between them carries only numbers.
     */
    private static int vectorRange(Pointwise op, ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo,
                                   float s, int lo, int end) {
        VectorLoop loop = VECTOR[op.ordinal()];
        if (loop == null) {
            return lo;
        }
        loop.run(o, oo, x, ao, y, bo, s, lo, end);
        return end;
    }

    @FunctionalInterface
    private interface VectorLoop {
        void run(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo, int end);
    }

    private static final VectorLoop[] VECTOR = new VectorLoop[Pointwise.values().length];

    static {
        VECTOR[Pointwise.FILL.ordinal()] = CpuElementwise::fill;
        VECTOR[Pointwise.ADD.ordinal()] = CpuElementwise::add;
        VECTOR[Pointwise.SCALE.ordinal()] = CpuElementwise::scale;
        VECTOR[Pointwise.MUL.ordinal()] = CpuElementwise::mul;
        VECTOR[Pointwise.MUL_ADD.ordinal()] = CpuElementwise::mulAdd;
        VECTOR[Pointwise.RELU.ordinal()] = CpuElementwise::relu;
        VECTOR[Pointwise.RELU_BACKWARD.ordinal()] = CpuElementwise::reluBackward;
        VECTOR[Pointwise.RELU2.ordinal()] = CpuElementwise::relu2;
        VECTOR[Pointwise.RELU2_BACKWARD.ordinal()] = CpuElementwise::relu2Backward;
        VECTOR[Pointwise.SQUARED_ERROR_BACKWARD.ordinal()] = CpuElementwise::squaredErrorBackward;
        VECTOR[Pointwise.TERNARY.ordinal()] = CpuElementwise::ternary;
    }

    private static void fill(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo, int end) {
        FloatVector r = FloatVector.broadcast(S, s);
        for (int i = lo; i < end; i += VL) {
            st(r, o, oo + i);
        }
    }

    private static void add(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo, int end) {
        for (int i = lo; i < end; i += VL) {
            st(ld(x, ao + i).add(ld(y, bo + i)), o, oo + i);
        }
    }

    private static void scale(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo, int end) {
        for (int i = lo; i < end; i += VL) {
            st(ld(x, ao + i).mul(s), o, oo + i);
        }
    }

    private static void mul(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo, int end) {
        for (int i = lo; i < end; i += VL) {
            st(ld(x, ao + i).mul(ld(y, bo + i)), o, oo + i);
        }
    }

    private static void mulAdd(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo, int end) {
        for (int i = lo; i < end; i += VL) {
            st(ld(o, oo + i).add(ld(x, ao + i).mul(ld(y, bo + i))), o, oo + i);
        }
    }

    private static void relu(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo, int end) {
        // v > 0 ? v : +0, the scalar expression: NaN and -0 give +0 (max(0) kept a NaN), as a compare and a blend
        FloatVector zero = FloatVector.zero(S);
        for (int i = lo; i < end; i += VL) {
            FloatVector v = ld(x, ao + i);
            st(zero.blend(v, v.compare(VectorOperators.GT, 0.0f)), o, oo + i);
        }
    }

    private static void reluBackward(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo,
                                     int end) {
        for (int i = lo; i < end; i += VL) {
            st(ld(o, oo + i).add(ld(x, ao + i), ld(y, bo + i).compare(VectorOperators.GT, 0.0f)), o, oo + i);
        }
    }

    private static void relu2(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo, int end) {
        for (int i = lo; i < end; i += VL) {
            FloatVector v = ld(x, ao + i).max(0.0f);
            st(v.mul(v), o, oo + i);
        }
    }

    private static void relu2Backward(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo,
                                      int end) {
        for (int i = lo; i < end; i += VL) {
            FloatVector xv = ld(y, bo + i);
            VectorMask<Float> pos = xv.compare(VectorOperators.GT, 0.0f);
            st(ld(o, oo + i).add(ld(x, ao + i).mul(2.0f).mul(xv), pos), o, oo + i);
        }
    }

    private static void squaredErrorBackward(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s,
                                             int lo, int end) {
        for (int i = lo; i < end; i += VL) {
            st(ld(o, oo + i).add(ld(x, ao + i).sub(ld(y, bo + i)).mul(s * 2.0f)), o, oo + i);
        }
    }

    private static void ternary(ByteBuffer o, int oo, ByteBuffer x, int ao, ByteBuffer y, int bo, float s, int lo, int end) {
        FloatVector zero = FloatVector.zero(S);
        float thr = 0.5f * s;
        for (int i = lo; i < end; i += VL) {
            FloatVector v = ld(x, ao + i);
            st(zero.blend(s, v.compare(VectorOperators.GT, thr)).blend(-s, v.compare(VectorOperators.LT, -thr)), o, oo + i);
        }
    }

    /** One element: byte offsets io, ia, ib. The reference's expression, in its order. */
    private static void scalar(Pointwise op, ByteBuffer o, int io, ByteBuffer x, int ia, ByteBuffer y, int ib, float s) {
        switch (op) {
            case FILL -> o.putFloat(io, s);
            case ADD -> o.putFloat(io, x.getFloat(ia) + y.getFloat(ib));
            case SCALE -> o.putFloat(io, x.getFloat(ia) * s);
            case MUL -> o.putFloat(io, x.getFloat(ia) * y.getFloat(ib));
            case MUL_ADD -> o.putFloat(io, o.getFloat(io) + x.getFloat(ia) * y.getFloat(ib));
            case RELU -> {
                float v = x.getFloat(ia);
                o.putFloat(io, v > 0.0f ? v : 0.0f);
            }
            case RELU_BACKWARD -> {
                if (y.getFloat(ib) > 0.0f) {
                    o.putFloat(io, o.getFloat(io) + x.getFloat(ia));
                }
            }
            case RELU2 -> {
                float v = x.getFloat(ia);
                float r = v > 0.0f ? v : 0.0f;
                o.putFloat(io, r * r);
            }
            case RELU2_BACKWARD -> {
                float v = y.getFloat(ib);
                if (v > 0.0f) {
                    o.putFloat(io, o.getFloat(io) + x.getFloat(ia) * 2.0f * v);
                }
            }
            case SIGMOID -> o.putFloat(io, (float) (1.0 / (1.0 + Math.exp(-x.getFloat(ia)))));
            case SIGMOID_BACKWARD -> {
                float p = y.getFloat(ib);
                o.putFloat(io, o.getFloat(io) + x.getFloat(ia) * p * (1.0f - p));
            }
            case SQUARED_ERROR_BACKWARD -> o.putFloat(io, o.getFloat(io) + s * 2.0f * (x.getFloat(ia) - y.getFloat(ib)));
            case TERNARY -> {
                float v = x.getFloat(ia), thr = 0.5f * s;
                float q = v > thr ? 1.0f : v < -thr ? -1.0f : 0.0f;
                o.putFloat(io, s * q);
            }
        }
    }

    void dropoutMask(Tensor mask, int n, float p, long seed, long offset) {
        Check.positive("n", n);
        CpuTensor m = of(mask).need(n, "n");
        Check.arg(p >= 0.0f && p < 1.0f, "p", p, "dropout probability must be in [0, 1)");
        float keep = 1.0f / (1.0f - p);
        boolean vector = cx.vector;
        cx.pool.forRange(n, GRAIN, (w, lo, hi) -> {
            int i = lo;
            if (vector && MASK_VECTOR) {
                i = dropoutMaskVector(m.bb, lo, lo + MASK_LANES.loopBound(hi - lo), p, keep, seed, offset);
            }
            for (; i < hi; i++) {
                m.fb.put(i, Dropout.uniform(seed, offset + i) < p ? 0.0f : keep);
            }
        });
    }

    /**
     * {@link #dropoutMaskVector} only where vectors are 512 bits wide (AVX-512, whose DQ extension multiplies 64-bit
     * lanes and converts them to float in one instruction each); on narrower vectors the scalar loop runs, not the
     * Vector API's per-lane fallback for those operations.
     */
    private static final boolean MASK_VECTOR = LongVector.SPECIES_PREFERRED.vectorBitSize() >= 512;
    /** Counters per step of {@link #dropoutMaskVector}: 64-bit lanes, eight to a 512-bit vector. */
    private static final jdk.incubator.vector.VectorSpecies<Long> MASK_LANES = LongVector.SPECIES_512;
    private static final jdk.incubator.vector.VectorSpecies<Float> MASK_FLOATS = FloatVector.SPECIES_256;
    private static final LongVector MASK_IOTA = LongVector.zero(MASK_LANES).addIndex(1);

    /**
     * {@link Dropout#uniform}'s splitmix64 on 64-bit lanes for [lo, hi) (whole steps), the same bits as the scalar
     * loop: the top 24 bits k of each hash, converted to float exactly, compared with p·2^24 (k/2^24 &lt; p exactly
     * when k &lt; p·2^24, the division by a power of two being exact). The scalar loop spent ~9 ns per element
     * (58 ms of a 1.05 s small baseline step). Returns hi.
     */
    private static int dropoutMaskVector(ByteBuffer m, int lo, int hi, float p, float keep, long seed, long offset) {
        float threshold = p * 16777216.0f;
        FloatVector keeps = FloatVector.broadcast(MASK_FLOATS, keep), zeros = FloatVector.zero(MASK_FLOATS);
        for (int i = lo; i < hi; i += MASK_LANES.length()) {
            LongVector z = MASK_IOTA.add(offset + i).mul(Dropout.GAMMA).add(seed);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 30)).mul(Dropout.MIX1);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 27)).mul(Dropout.MIX2);
            z = z.lanewise(VectorOperators.XOR, z.lanewise(VectorOperators.LSHR, 31)).lanewise(VectorOperators.LSHR, 40);
            FloatVector k = (FloatVector) z.convertShape(VectorOperators.L2F, MASK_FLOATS, 0);
            VectorIO.store(keeps.blend(zeros, k.compare(VectorOperators.LT, threshold)), m, i << 2);
        }
        return hi;
    }

    /**
     * AdamW's vector loop over [lo, hi) (a multiple of VL long), its own method exchanging only numbers and buffers,
     * as CpuReductions' sums (the boxing a JFR of short runs showed in the lambda's loop was C1 code, before C2).
     */
    private static void adamWVector(ByteBuffer P, ByteBuffer G, ByteBuffer M, ByteBuffer V, int lo, int hi, float decay, float w1,
                                    float w1c, boolean lerpLow, float beta2, float oneMinusBeta2, float bc2Sqrt, float eps,
                                    float negStepSize) {
        for (int i = lo; i < hi; i += VL) {
            FloatVector g = ld(G, i);
            FloatVector p = ld(P, i).mul(decay);
            FloatVector mm = ld(M, i);
            // torch.lerp from the nearer end, as its CPU kernel
            mm = lerpLow ? mm.add(g.sub(mm).mul(w1)) : g.sub(g.sub(mm).mul(w1c));
            FloatVector vv = ld(V, i).mul(beta2).add(g.mul(oneMinusBeta2).mul(g));
            FloatVector denom = vv.sqrt().div(bc2Sqrt).add(eps);
            p = p.add(mm.mul(negStepSize).div(denom));
            st(mm, M, i);
            st(vv, V, i);
            st(p, P, i);
        }
    }

    void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, AdamStep step) {
        Check.positive("n", n);
        CpuTensor P = of(param).need(n, "n"), G = of(grad).need(n, "n");
        CpuTensor M = of(m).need(n, "n"), V = of(v).need(n, "n");
        float decay = step.decay(), w1 = step.lerpWeight(), w1c = 1.0f - w1, beta2 = step.beta2();
        float oneMinusBeta2 = step.oneMinusBeta2(), bc2Sqrt = step.bc2Sqrt(), negStepSize = step.negStepSize();
        float eps = step.eps();
        boolean lerpLow = w1 < 0.5f, vector = cx.vector;
        cx.pool.forRange(n, GRAIN, (w, lo, hi) -> {
            int i = lo;
            if (vector) {
                i = vbound(lo, hi);
                adamWVector(P.bb, G.bb, M.bb, V.bb, lo, i, decay, w1, w1c, lerpLow, beta2, oneMinusBeta2, bc2Sqrt, eps, negStepSize);
            }
            for (; i < hi; i++) {
                float g = G.fb.get(i);
                float p = P.fb.get(i) * decay;
                float mm = M.fb.get(i);
                mm = lerpLow ? mm + w1 * (g - mm) : g - (g - mm) * w1c;
                float vv = V.fb.get(i) * beta2 + oneMinusBeta2 * g * g;
                float denom = (float) Math.sqrt(vv) / bc2Sqrt + eps;
                p = p + negStepSize * mm / denom;
                M.fb.put(i, mm);
                V.fb.put(i, vv);
                P.fb.put(i, p);
            }
        });
    }
}
