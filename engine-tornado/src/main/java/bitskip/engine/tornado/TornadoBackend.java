package bitskip.engine.tornado;

import bitskip.engine.Backend;
import bitskip.engine.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The TornadoVM backend: every op runs as one or a few kernels written as plain Java methods (the
 * {@code *Kernels} classes of this package) that TornadoVM compiles to OpenCL C at their first launch, each
 * in a task graph of one {@code TornadoExecutionPlan} built once per device ({@link KernelPlan}). Every
 * tensor lives in the device arena for the whole run; nothing comes back to the host inside a step except
 * the scalars the interface returns (alpha, the losses, sums of squares), and integer inputs (tokens,
 * targets, skip flags) go to the device as each launch's small integer input.
 *
 * <p>The kernels translate kernels-java one to one, with the reference's order of float operations and its
 * double expressions in double, and TornadoVM's contracting and approximating options off ({@link
 * Numerics}): on a device with fp64 (PoCL, NVIDIA, AMD) every op except the whole-tensor reductions agrees
 * with the reference bit for bit; the reductions (alpha, sums of squares, squared error, routing loss) run
 * as 256 partial sums in double, relative ~1e-15 from the reference's sequential order. A device without
 * fp64 is refused with that reason.
 */
public final class TornadoBackend implements Backend {
    private final KernelPlan k;
    private final List<TornadoTensor> tensors = new ArrayList<>();
    private TornadoTensor dscore;
    private boolean closed;

    /** The device of -Dbitskip.device / $BITSKIP_DEVICE (B:D or a name), else TornadoVM's default device. */
    public TornadoBackend() {
        this((String) null);
    }

    /** For {@code Backends}, which loads this class by name (the engine is compiled for Java 17). */
    public static TornadoBackend create() {
        return new TornadoBackend();
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
        synchronized (k) {
            int at = k.allocator.allocate(n);
            if (at < 0) {
                throw new IllegalStateException(String.format(Locale.ROOT,
                        "TornadoVM device %s (%s): the arena of %.1f MiB has no room for tensor %s (%.1f MiB; %.1f MiB"
                                + " allocated, largest free range %.1f MiB); start with a larger -D%s (e.g. %dm)",
                        k.device.id(), k.device.name(), k.allocator.capacity() * 4 / 1048576.0, name, n * 4 / 1048576.0,
                        k.allocator.used() * 4 / 1048576.0, k.allocator.largestFree() * 4 / 1048576.0,
                        KernelPlan.MEMORY_PROPERTY, 2 * (k.allocator.capacity() * 4 >> 20)));
            }
            TornadoTensor t = new TornadoTensor(this, name, at, n);
            tensors.add(t);
            k.ints(at, n).run(k.zero, n);
            return t;
        }
    }

    /** Bytes of the tensors this backend holds now. */
    public long allocatedBytes() {
        long b = 0;
        for (TornadoTensor t : tensors) {
            b += 4L * ArenaAllocator.roundUp(Math.max(t.size, 1));
        }
        return b;
    }

    private TornadoTensor t(Tensor x) {
        if (x instanceof TornadoTensor o && o.owner == this) {
            if (o.released) {
                throw new IllegalStateException("tensor " + x.name() + " was released (backend closed)");
            }
            return o;
        }
        throw new IllegalArgumentException("tensor " + (x == null ? "null" : x.name() + " belongs to another backend ("
                + x.getClass().getSimpleName() + ")") + ", not to this TornadoVM backend");
    }

    /** The arena offset of x, checked to hold n floats; 0 for an absent optional tensor. */
    private int at(Tensor x, long n, String what) {
        if (x == null) {
            throw new IllegalArgumentException("argument " + what + " is null; expected " + n + " floats");
        }
        if (x.size() < n) {
            throw new IllegalArgumentException("tensor " + x.name() + " has " + x.size() + " floats, expected at least "
                    + n + " (" + what + ")");
        }
        return t(x).offset;
    }

    private int atOrZero(Tensor x, long n, String what) {
        return x == null ? 0 : at(x, n, what);
    }

    @Override
    public void zero(Tensor x) {
        TornadoTensor o = t(x);
        synchronized (k) {
            k.ints(o.offset, o.size).run(k.zero, o.size);
        }
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

    @Override
    public void copy(Tensor dst, Tensor src, int n) {
        copy(dst, 0, src, 0, n);
    }

    @Override
    public void copy(Tensor dst, int dstOffset, Tensor src, int srcOffset, int n) {
        int s = at(src, (long) srcOffset + n, "copy source range") + srcOffset;
        int d = at(dst, (long) dstOffset + n, "copy destination range") + dstOffset;
        if (n <= 0 || s == d) {
            return;
        }
        synchronized (k) {
            if (Math.abs(d - s) < n) { // overlapping: through a scratch range
                int tmp = scratch(n);
                k.ints(tmp, s, n).run(k.copy, n);
                k.ints(d, tmp, n).run(k.copy, n);
                k.allocator.release(tmp, n);
            } else {
                k.ints(d, s, n).run(k.copy, n);
            }
        }
    }

    /** A range of n floats for the duration of one op (caller holds the plan's lock and releases it). */
    private int scratch(int n) {
        int at = k.allocator.allocate(n);
        if (at < 0) {
            throw new IllegalStateException("TornadoVM arena: no room for " + n + " floats of scratch (-D"
                    + KernelPlan.MEMORY_PROPERTY + ")");
        }
        return at;
    }

    // ---- embedding ---------------------------------------------------------------------------------

    private static void checkIds(int[] ids, int N, int lo, int V, String what) {
        if (ids == null || ids.length < N) {
            throw new IllegalArgumentException("argument " + what + " (int[]) has length "
                    + (ids == null ? "null" : ids.length) + ", expected at least " + N + " (N)");
        }
        for (int n = 0; n < N; n++) {
            if (ids[n] < lo || ids[n] >= V) {
                throw new IllegalArgumentException("argument " + what + "[" + n + "] = " + ids[n] + ": must be in ["
                        + lo + ", V) with V = " + V + (lo < 0 ? " (-1: ignored)" : ""));
            }
        }
    }

    @Override
    public void embeddingForward(Tensor out, int[] tokens, Tensor wte, int N, int C, int V) {
        checkIds(tokens, N, 0, V, "tokens");
        int o = at(out, (long) N * C, "out N*C"), w = at(wte, (long) V * C, "wte V*C");
        synchronized (k) {
            k.indices(tokens, N, "tokens").ints(o, w, N, C).run(k.embeddingForward, (long) N * C);
        }
    }

    @Override
    public void embeddingBackward(Tensor dwte, Tensor dout, int[] tokens, int N, int C, int V) {
        checkIds(tokens, N, 0, V, "tokens");
        int dw = at(dwte, (long) V * C, "dwte V*C"), d = at(dout, (long) N * C, "dout N*C");
        synchronized (k) {
            k.indices(tokens, N, "tokens").ints(dw, d, N, C).run(k.embeddingBackward, C);
        }
    }

    private static void checkPositions(int B, int T, int pos0, int maxT) {
        if (pos0 < 0 || (long) pos0 + T > maxT) {
            throw new IllegalArgumentException("argument pos0 = " + pos0 + ": pos0 + T = " + ((long) pos0 + T)
                    + " must be within maxT = " + maxT);
        }
    }

    @Override
    public void positionsForward(Tensor out, Tensor wpe, int B, int T, int C, int pos0, int maxT) {
        checkPositions(B, T, pos0, maxT);
        int o = at(out, (long) B * T * C, "out B*T*C"), w = at(wpe, (long) maxT * C, "wpe maxT*C");
        synchronized (k) {
            k.ints(o, w, B, T, C, pos0).run(k.positionsForward, (long) B * T * C);
        }
    }

    @Override
    public void positionsBackward(Tensor dwpe, Tensor dout, int B, int T, int C, int pos0, int maxT) {
        checkPositions(B, T, pos0, maxT);
        int dw = at(dwpe, (long) maxT * C, "dwpe maxT*C"), d = at(dout, (long) B * T * C, "dout B*T*C");
        synchronized (k) {
            k.ints(dw, d, B, T, C, pos0).run(k.positionsBackward, (long) T * C);
        }
    }

    // ---- normalization, linear, pointwise ------------------------------------------------------------

    @Override
    public void layerNormForward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor weight, Tensor bias,
                                 int N, int C, float eps) {
        if ((weight == null) != (bias == null)) {
            throw new IllegalArgumentException("LayerNorm weight/bias: both present or both null");
        }
        int o = at(out, (long) N * C, "out N*C"), mu = at(mean, N, "mean N"), rs = at(rstd, N, "rstd N");
        int x = at(inp, (long) N * C, "inp N*C"), w = atOrZero(weight, C, "weight C"), b = atOrZero(bias, C, "bias C");
        synchronized (k) {
            k.ints(o, mu, rs, x, w, b, weight != null ? 1 : 0, N, C).floats(eps).run(k.layerNormForward, N);
        }
    }

    @Override
    public void layerNormBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight,
                                  Tensor mean, Tensor rstd, int N, int C) {
        int dx = at(dinp, (long) N * C, "dinp N*C"), d = at(dout, (long) N * C, "dout N*C");
        int x = at(inp, (long) N * C, "inp N*C"), mu = at(mean, N, "mean N"), rs = at(rstd, N, "rstd N");
        int w = atOrZero(weight, C, "weight C");
        synchronized (k) {
            k.ints(dx, d, x, w, weight != null ? 1 : 0, mu, rs, N, C).run(k.layerNormBackwardInput, N);
            if (weight != null) {
                int dw = at(dweight, C, "dweight C"), db = at(dbias, C, "dbias C");
                k.ints(dw, db, d, x, mu, rs, N, C).run(k.layerNormBackwardParams, C);
            }
        }
    }

    /** C[i, j] = [C +] bias[j] + Σ_k A[i, k]·B[k, j] on arena offsets with element strides. */
    private void gemm(int M, int N, int K, int a, int sam, int sak, int b, int sbk, int sbn, int c, int ldc, int bias,
                      boolean hasBias, boolean accumulate) {
        int blk = MatmulKernels.BLOCK;
        k.ints(M, N, K, a, sam, sak, b, sbk, sbn, c, ldc, bias, hasBias ? 1 : 0, accumulate ? 1 : 0)
                .run2(k.gemm, (M + blk - 1) / blk, (N + blk - 1) / blk);
    }

    @Override
    public void matmulForward(Tensor out, Tensor inp, Tensor weight, Tensor bias, int N, int C, int OC) {
        int o = at(out, (long) N * OC, "out N*OC"), x = at(inp, (long) N * C, "inp N*C");
        int w = at(weight, (long) OC * C, "weight OC*C"), b = atOrZero(bias, OC, "bias OC");
        synchronized (k) {
            gemm(N, OC, C, x, C, 1, w, 1, C, o, OC, b, bias != null, false);
        }
    }

    @Override
    public void matmulBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight,
                               int N, int C, int OC) {
        int d = at(dout, (long) N * OC, "dout N*OC");
        synchronized (k) {
            if (dinp != null) {
                int dx = at(dinp, (long) N * C, "dinp N*C"), w = at(weight, (long) OC * C, "weight OC*C");
                gemm(N, C, OC, d, OC, 1, w, C, 1, dx, C, 0, false, true);
            }
            if (dweight != null) {
                int dw = at(dweight, (long) OC * C, "dweight OC*C"), x = at(inp, (long) N * C, "inp N*C");
                gemm(OC, C, N, d, 1, OC, x, C, 1, dw, C, 0, false, true);
            }
            if (dbias != null) {
                k.ints(at(dbias, OC, "dbias OC"), d, N, OC).run(k.columnSumAccumulate, OC);
            }
        }
    }

    /** A kernel over n elements of up to three tensors (out first), each checked to hold n floats. */
    private void pointwise(KernelPlan.Kernel kernel, int n, Tensor... ts) {
        int[] a = new int[ts.length + 1];
        for (int i = 0; i < ts.length; i++) {
            a[i] = at(ts[i], n, "n = " + n);
        }
        a[ts.length] = n;
        synchronized (k) {
            k.ints(a).run(kernel, n);
        }
    }

    @Override
    public void relu2Forward(Tensor out, Tensor inp, int n) {
        pointwise(k.relu2Forward, n, out, inp);
    }

    @Override
    public void relu2Backward(Tensor dinp, Tensor dout, Tensor inp, int n) {
        pointwise(k.relu2Backward, n, dinp, dout, inp);
    }

    @Override
    public void add(Tensor out, Tensor a, Tensor b, int n) {
        pointwise(k.add, n, out, a, b);
    }

    @Override
    public void accumulate(Tensor dst, Tensor src, int n) {
        pointwise(k.add, n, dst, dst, src);
    }

    @Override
    public void scale(Tensor x, int n, float factor) {
        int o = at(x, n, "n");
        synchronized (k) {
            k.ints(o, n).floats(factor).run(k.scale, n);
        }
    }

    // ---- dropout -------------------------------------------------------------------------------------

    @Override
    public void dropoutMask(Tensor mask, int n, float p, long seed, long offset) {
        if (!(p >= 0.0f && p < 1.0f)) {
            throw new IllegalArgumentException("argument p = " + p + ": dropout probability must be in [0, 1)");
        }
        int o = at(mask, n, "mask n");
        float keep = 1.0f / (1.0f - p);
        synchronized (k) {
            k.ints(o, n, (int) (seed >>> 32), (int) seed, (int) (offset >>> 32), (int) offset).floats(p, keep)
                    .run(k.dropoutMask, n);
        }
    }

    @Override
    public void dropoutForward(Tensor out, Tensor inp, Tensor mask, int n) {
        pointwise(k.multiply, n, out, inp, mask);
    }

    @Override
    public void dropoutBackward(Tensor dinp, Tensor dout, Tensor mask, int n) {
        pointwise(k.multiplyAccumulate, n, dinp, dout, mask);
    }

    // ---- layer skipping --------------------------------------------------------------------------------

    private void select(KernelPlan.Kernel kernel, Tensor a, Tensor b, Tensor c, int[] skip, int B, int T, int C) {
        if (skip == null || skip.length < B) {
            throw new IllegalArgumentException("argument skip (int[]) has length "
                    + (skip == null ? "null" : skip.length) + ", expected at least " + B + " (B)");
        }
        long n = (long) B * T * C;
        int x = at(a, n, "B*T*C"), y = at(b, n, "B*T*C"), z = at(c, n, "B*T*C");
        synchronized (k) {
            k.indices(skip, B, "skip").ints(x, y, z, B, T * C).run(kernel, n);
        }
    }

    @Override
    public void selectSamples(Tensor out, Tensor computed, Tensor skipped, int[] skip, int B, int T, int C) {
        select(k.selectSamples, out, computed, skipped, skip, B, T, C);
    }

    @Override
    public void selectSamplesBackward(Tensor dcomputed, Tensor dskipped, Tensor dout, int[] skip, int B, int T, int C) {
        select(k.selectSamplesBackward, dcomputed, dskipped, dout, skip, B, T, C);
    }

    // ---- reductions ----------------------------------------------------------------------------------

    /**
     * Σ term(i) over n (ReduceKernels modes) into the arena at `out`: a stored double (post 0), alpha
     * (post 1) or a float mean (post 2). Caller holds the plan's lock.
     */
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

    // ---- quantization --------------------------------------------------------------------------------

    @Override
    public float ternaryForward(Tensor wHat, byte[] codes, Tensor w, int n) {
        int x = at(w, n, "w n"), out = atOrZero(wHat, n, "wHat n");
        if (codes != null && codes.length < n) {
            throw new IllegalArgumentException("argument codes (byte[]) has length " + codes.length
                    + ", expected at least " + n + " (n)");
        }
        synchronized (k) {
            reduce(ReduceKernels.ABS, x, 0, n, 0.0f, 1, KernelPlan.SLOT_ALPHA);
            int c = codes != null ? scratch(n) : 0;
            k.ints(out, wHat != null ? 1 : 0, c, codes != null ? 1 : 0, x, n, KernelPlan.SLOT_ALPHA).run(k.ternaryQuantize, n);
            if (codes != null) {
                float[] q = new float[n];
                k.download(c, q, n);
                k.allocator.release(c, n);
                for (int i = 0; i < n; i++) {
                    codes[i] = (byte) q[i];
                }
            }
            return k.readFloat(KernelPlan.SLOT_ALPHA);
        }
    }

    @Override
    public double squaredError(Tensor w, Tensor wHat, int n) {
        return sum(ReduceKernels.SQUARED_DIFFERENCE, at(w, n, "w n"), at(wHat, n, "wHat n"), n, 0.0f);
    }

    @Override
    public void squaredErrorBackward(Tensor dw, Tensor w, Tensor wHat, int n, float scale) {
        int d = at(dw, n, "dw n"), x = at(w, n, "w n"), y = at(wHat, n, "wHat n");
        synchronized (k) {
            k.ints(d, x, y, n).floats(scale).run(k.squaredErrorBackward, n);
        }
    }

    private static void checkActBits(int actBits) {
        if (!(actBits == 0 || (actBits >= 2 && actBits <= 8))) {
            throw new IllegalArgumentException("argument actBits = " + actBits
                    + ": must be 0 (no activation quantization) or in [2, 8]");
        }
    }

    @Override
    public float bitLinearForward(Tensor out, Tensor preact, Tensor xHat, Tensor actScale, Tensor wHat, Tensor inp,
                                  Tensor weight, int N, int C, int OC, int actBits, boolean ternary, boolean relu2) {
        checkActBits(actBits);
        at(out, (long) N * OC, "out N*OC");
        at(inp, (long) N * C, "inp N*C");
        at(weight, (long) OC * C, "weight OC*C");
        float alpha = 1.0f;
        if (ternary) {
            alpha = ternaryForward(wHat, null, weight, OC * C);
        }
        if (actBits != 0) {
            int xq = at(xHat, (long) N * C, "xHat N*C (actBits != 0)"), s = at(actScale, N, "actScale N (actBits != 0)");
            float Q = (float) ((1 << (actBits - 1)) - 1);
            synchronized (k) {
                k.ints(xq, s, t(inp).offset, N, C).floats(Q).run(k.activationQuantize, N);
            }
        }
        Tensor x = actBits != 0 ? xHat : inp;
        Tensor w = ternary ? wHat : weight;
        if (relu2) {
            at(preact, (long) N * OC, "preact N*OC (relu2 is on)");
            matmulForward(preact, x, w, null, N, C, OC);
            relu2Forward(out, preact, N * OC);
        } else {
            matmulForward(out, x, w, null, N, C, OC);
        }
        return alpha;
    }

    @Override
    public void bitLinearBackward(Tensor dinp, Tensor dweight, Tensor dpreact, Tensor dout, Tensor preact,
                                  Tensor xHat, Tensor wHat, Tensor inp, Tensor weight, int N, int C, int OC,
                                  int actBits, boolean ternary, boolean relu2) {
        checkActBits(actBits);
        Tensor x = actBits != 0 ? xHat : inp;
        Tensor w = ternary ? wHat : weight;
        Tensor g = dout;
        if (relu2) {
            at(dpreact, (long) N * OC, "dpreact N*OC (relu2 is on)");
            zeroRange(dpreact, (long) N * OC);
            relu2Backward(dpreact, dout, preact, N * OC);
            g = dpreact;
        }
        matmulBackward(dinp, dweight, null, g, x, w, N, C, OC);
    }

    private void zeroRange(Tensor x, long n) {
        synchronized (k) {
            k.ints(t(x).offset, (int) n).run(k.zero, n);
        }
    }

    /** In-place orthonormal FWHT of each of N rows of P. */
    private void fwht(Tensor x, int N, int P) {
        synchronized (k) {
            k.ints(t(x).offset, N, P).floats((float) (1.0 / Math.sqrt(P))).run(k.fwhtRows, N);
        }
    }

    private static void checkPadded(int C, int P) {
        if (P <= 0 || (P & (P - 1)) != 0 || P < C) {
            throw new IllegalArgumentException("argument P = " + P + ": must be a power of two >= C = " + C);
        }
    }

    @Override
    public float hBitLinearForward(Tensor out, Tensor preact, Tensor zHat, Tensor actScale, Tensor wHat, Tensor z,
                                   Tensor lnOut, Tensor lnMean, Tensor lnRstd, Tensor inp, Tensor lnWeight,
                                   Tensor lnBias, Tensor weight, int N, int C, int P, int OC, float eps,
                                   int actBits, boolean ternary, boolean relu2) {
        checkPadded(C, P);
        int zo = at(z, (long) N * P, "z N*P"), lo = at(lnOut, (long) N * C, "lnOut N*C");
        at(weight, (long) OC * P, "weight OC*P (W lives in the rotated basis)");
        layerNormForward(lnOut, lnMean, lnRstd, inp, lnWeight, lnBias, N, C, eps);
        synchronized (k) {
            k.ints(zo, lo, N, C, P).run(k.padForward, (long) N * P);
        }
        fwht(z, N, P);
        return bitLinearForward(out, preact, zHat, actScale, wHat, z, weight, N, P, OC, actBits, ternary, relu2);
    }

    @Override
    public void hBitLinearBackward(Tensor dinp, Tensor dlnWeight, Tensor dlnBias, Tensor dweight, Tensor dpreact,
                                   Tensor dz, Tensor dlnOut, Tensor dout, Tensor preact, Tensor zHat, Tensor wHat,
                                   Tensor z, Tensor lnMean, Tensor lnRstd, Tensor inp, Tensor lnWeight,
                                   Tensor weight, int N, int C, int P, int OC, int actBits, boolean ternary,
                                   boolean relu2) {
        checkPadded(C, P);
        int dzo = at(dz, (long) N * P, "dz N*P"), dlo = at(dlnOut, (long) N * C, "dlnOut N*C");
        zeroRange(dz, (long) N * P);
        zeroRange(dlnOut, (long) N * C);
        bitLinearBackward(dz, dweight, dpreact, dout, preact, zHat, wHat, z, weight, N, P, OC, actBits, ternary, relu2);
        fwht(dz, N, P);
        synchronized (k) {
            k.ints(dlo, dzo, N, C, P).run(k.padBackward, (long) N * C);
        }
        layerNormBackward(dinp, dlnWeight, dlnBias, dlnOut, inp, lnWeight, lnMean, lnRstd, N, C);
    }

    // ---- attention ------------------------------------------------------------------------------------

    private void rope(KernelPlan.Kernel kernel, Tensor x, Tensor y, Tensor cos, Tensor sin, int B, int T, int NH, int HS,
                      int pos0) {
        if (HS % 2 != 0) {
            throw new IllegalArgumentException("argument HS = " + HS + ": must be even");
        }
        long n = (long) B * T * NH * HS, table = (long) (pos0 + T) * (HS / 2);
        int a = at(x, n, "B*T*NH*HS"), b = at(y, n, "B*T*NH*HS");
        int c = at(cos, table, "cos (pos0+T)*HS/2"), s = at(sin, table, "sin (pos0+T)*HS/2");
        synchronized (k) {
            k.ints(a, b, c, s, B, T, NH, HS, pos0).run(kernel, n / 2);
        }
    }

    @Override
    public void ropeForward(Tensor out, Tensor inp, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0) {
        rope(k.ropeForward, out, inp, cos, sin, B, T, NH, HS, pos0);
    }

    @Override
    public void ropeBackward(Tensor dinp, Tensor dout, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0) {
        rope(k.ropeBackward, dinp, dout, cos, sin, B, T, NH, HS, pos0);
    }

    /** Offsets of q, k, v, probs and the mask (0 when absent), checked against the shapes. */
    private int[] attentionInputs(Tensor q, Tensor kk, Tensor v, Tensor probs, Tensor dropMask, int B, int T, int NH,
                                  int NKV, int HS) {
        if (NKV <= 0 || NH % NKV != 0) {
            throw new IllegalArgumentException("argument NKV = " + NKV + ": must divide NH = " + NH);
        }
        long p = (long) B * NH * T * T;
        return new int[] {at(q, (long) B * T * NH * HS, "q B*T*NH*HS"), at(kk, (long) B * T * NKV * HS, "k B*T*NKV*HS"),
                at(v, (long) B * T * NKV * HS, "v B*T*NKV*HS"), at(probs, p, "probs B*NH*T*T"),
                atOrZero(dropMask, p, "dropMask B*NH*T*T")};
    }

    @Override
    public void attentionForward(Tensor out, Tensor probs, Tensor q, Tensor kk, Tensor v, Tensor dropMask,
                                 int B, int T, int NH, int NKV, int HS) {
        int[] in = attentionInputs(q, kk, v, probs, dropMask, B, T, NH, NKV, HS);
        int o = at(out, (long) B * T * NH * HS, "out B*T*NH*HS");
        synchronized (k) {
            k.ints(o, in[3], in[0], in[1], in[2], in[4], dropMask != null ? 1 : 0, B, T, NH, NKV, HS)
                    .floats((float) (1.0 / Math.sqrt(HS))).run(k.attentionForward, (long) B * NH * T);
        }
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor scratch, Tensor dout, Tensor q, Tensor kk,
                                  Tensor v, Tensor probs, Tensor dropMask, int B, int T, int NH, int NKV, int HS) {
        int[] in = attentionInputs(q, kk, v, probs, dropMask, B, T, NH, NKV, HS);
        int dqo = at(dq, (long) B * T * NH * HS, "dq B*T*NH*HS"), dko = at(dk, (long) B * T * NKV * HS, "dk B*T*NKV*HS");
        int dvo = at(dv, (long) B * T * NKV * HS, "dv B*T*NKV*HS"), d = at(dout, (long) B * T * NH * HS, "dout B*T*NH*HS");
        // The reference keeps one row of score gradients (scratch, T); rows run in parallel here, so the
        // backend keeps its own (B, NH, T, T) buffer, allocated once for the largest shape.
        int rows = B * NH * T * T;
        if (dscore == null || dscore.size < rows) {
            if (dscore != null) {
                release(dscore);
            }
            dscore = (TornadoTensor) alloc("tornado.attention.dscore", rows);
        }
        int mask = dropMask != null ? 1 : 0;
        synchronized (k) {
            k.ints(dqo, dscore.offset, d, in[0], in[1], in[2], in[3], in[4], mask, B, T, NH, NKV, HS)
                    .floats((float) (1.0 / Math.sqrt(HS))).run(k.attentionBackwardQuery, (long) B * NH * T);
            k.ints(dko, dvo, dscore.offset, d, in[0], in[3], in[4], mask, B, T, NH, NKV, HS)
                    .run(k.attentionBackwardKeyValue, (long) B * T * NKV * HS);
        }
    }

    // ---- routing -------------------------------------------------------------------------------------

    @Override
    public void routerForward(Tensor p, Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h,
                              Tensor lnWeight, Tensor lnBias, Tensor w1, Tensor b1, Tensor w2, Tensor b2,
                              int N, int C, int H, float eps) {
        at(p, N, "p N");
        at(hidden, (long) N * H, "hidden N*H");
        layerNormForward(ln, lnMean, lnRstd, h, lnWeight, lnBias, N, C, eps);
        matmulForward(hidden, ln, w1, b1, N, C, H);
        pointwise(k.reluForward, N * H, hidden, hidden);
        matmulForward(p, hidden, w2, b2, N, H, 1);
        pointwise(k.sigmoidForward, N, p, p);
    }

    @Override
    public void routerBackward(Tensor dh, Tensor dlnWeight, Tensor dlnBias, Tensor dw1, Tensor db1, Tensor dw2,
                               Tensor db2, Tensor dlogit, Tensor dhidden, Tensor dpre, Tensor dln, Tensor dp,
                               Tensor p, Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h,
                               Tensor lnWeight, Tensor w1, Tensor w2, int N, int C, int H) {
        at(dlogit, N, "dlogit N");
        at(dhidden, (long) N * H, "dhidden N*H");
        at(dpre, (long) N * H, "dpre N*H");
        at(dln, (long) N * C, "dln N*C");
        zeroRange(dlogit, N);
        zeroRange(dhidden, (long) N * H);
        zeroRange(dpre, (long) N * H);
        zeroRange(dln, (long) N * C);
        pointwise(k.sigmoidBackward, N, dlogit, dp, p);
        matmulBackward(dhidden, dw2, db2, dlogit, hidden, w2, N, H, 1);
        pointwise(k.reluBackward, N * H, dpre, dhidden, hidden);
        matmulBackward(dln, dw1, db1, dpre, ln, w1, N, C, H);
        layerNormBackward(dh, dlnWeight, dlnBias, dln, h, lnWeight, lnMean, lnRstd, N, C);
    }

    @Override
    public double routingLossForward(Tensor lbar, Tensor pExit, int L, int N, float target, boolean batchMean) {
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

    @Override
    public void routingLossBackward(Tensor dpExit, Tensor pExit, Tensor lbar, int L, int N, float target,
                                    boolean batchMean, float gradScale) {
        int d = at(dpExit, (long) L * N, "dpExit L*N"), pe = at(pExit, (long) L * N, "pExit L*N");
        int lb = at(lbar, N, "lbar N");
        synchronized (k) {
            if (batchMean) {
                reduce(ReduceKernels.VALUE, lb, 0, N, 0.0f, 2, KernelPlan.SLOT_MEAN);
            }
            k.ints(d, pe, lb, L, N, batchMean ? 1 : 0, KernelPlan.SLOT_MEAN).floats(target, gradScale)
                    .run(k.routingBackward, N);
        }
    }

    // ---- the LM head and its loss --------------------------------------------------------------------

    @Override
    public double headLoss(Tensor x, Tensor head, int[] targets, int N, int C, int V, float gradScale, Tensor dx,
                           Tensor dhead, Tensor logits, Tensor dlogits, int chunkRows) {
        if (chunkRows <= 0) {
            throw new IllegalArgumentException("argument chunkRows = " + chunkRows + ": must be positive");
        }
        checkIds(targets, N, -1, V, "targets");
        int xo = at(x, (long) N * C, "x N*C"), w = at(head, (long) V * C, "head V*C");
        int chunk = Math.min(chunkRows, N);
        int lg = at(logits, (long) chunk * V, "logits min(chunkRows, N)*V");
        boolean grad = dx != null;
        int dxo = grad ? at(dx, (long) N * C, "dx N*C") : 0, dw = grad ? at(dhead, (long) V * C, "dhead V*C") : 0;
        int dlg = grad ? at(dlogits, (long) chunk * V, "dlogits min(chunkRows, N)*V") : 0;
        synchronized (k) {
            int rowLoss = scratch(3 * N), stats = scratch(4 * chunk);
            try {
                k.indices(targets, N, "targets");
                for (int r0 = 0; r0 < N; r0 += chunkRows) {
                    int R = Math.min(chunkRows, N - r0);
                    gemm(R, V, C, xo + r0 * C, C, 1, w, 1, C, lg, V, 0, false, false);
                    k.ints(lg, stats, rowLoss, r0, R, V).run(k.crossEntropyRows, R);
                    if (grad) {
                        k.ints(lg, dlg, stats, r0, R, V).floats(gradScale).run(k.crossEntropyGradient, (long) R * V);
                        gemm(R, C, V, dlg, V, 1, w, C, 1, dxo + r0 * C, C, 0, false, true);
                        gemm(V, C, R, dlg, 1, V, xo + r0 * C, C, 1, dw, C, 0, false, true);
                    }
                }
                k.ints(rowLoss, N, chunkRows, KernelPlan.SLOT_SUM).run(k.sumRowLosses, 1);
                return k.readDouble(KernelPlan.SLOT_SUM);
            } finally {
                k.allocator.release(stats, 4 * chunk);
                k.allocator.release(rowLoss, 3 * N);
            }
        }
    }

    // ---- optimizer -------------------------------------------------------------------------------------

    @Override
    public double sumSquares(Tensor g, int n) {
        return sum(ReduceKernels.SQUARE, at(g, n, "g n"), 0, n, 0.0f);
    }

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, float lr, float beta1, float beta2,
                      float eps, float weightDecay, int step) {
        if (step < 1) {
            throw new IllegalArgumentException("argument step = " + step + ": must be >= 1 (the first update is step 1)");
        }
        int p = at(param, n, "param n"), g = at(grad, n, "grad n"), mo = at(m, n, "m n"), vo = at(v, n, "v n");
        // the scalars exactly as AdamW.update computes them (double, rounded once)
        double bc1 = 1.0 - Math.pow(beta1, step);
        double bc2 = 1.0 - Math.pow(beta2, step);
        synchronized (k) {
            k.ints(p, g, mo, vo, n).floats((float) (1.0 - (double) lr * weightDecay), (float) (1.0 - beta1), beta2,
                    (float) (1.0 - beta2), (float) Math.sqrt(bc2), (float) (-(lr / bc1)), eps).run(k.adamW, n);
        }
    }

    // ---- lifetime --------------------------------------------------------------------------------------

    private void release(TornadoTensor x) {
        synchronized (k) {
            if (!x.released) {
                x.released = true;
                k.allocator.release(x.offset, x.size);
            }
        }
        tensors.remove(x);
    }

    /** Returns this backend's tensors to the device arena (the compiled kernels stay for the next backend). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (TornadoTensor x : new ArrayList<>(tensors)) {
            release(x);
        }
        dscore = null;
    }
}
