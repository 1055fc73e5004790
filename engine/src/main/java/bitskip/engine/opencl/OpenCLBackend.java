package bitskip.engine.opencl;

import static org.jocl.CL.*;

import bitskip.engine.Backend;
import bitskip.engine.Tensor;
import java.util.ArrayList;
import java.util.List;
import org.jocl.CLException;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_kernel;
import org.jocl.cl_mem;

/**
 * The OpenCL backend (JOCL): every tensor lives on one device for the whole run, every op is one or a few
 * kernels of {@code bitskip/opencl/bitskip.cl} enqueued on one in-order queue, and nothing comes back to
 * the host inside a step except the scalars the interface returns (alpha, the losses, sumSquares).
 * Integer inputs (tokens, targets, skip flags) go to the device as small read-only buffers.
 *
 * <p>The kernels translate {@code kernels-java} one to one. Element-wise ops, LayerNorm, the quantizers'
 * codes, the FWHT, RoPE, dropout masks, attention, AdamW and the GEMM (same summation order, FP_CONTRACT
 * off, correctly rounded / and sqrt) reproduce the reference bit for bit when the device has fp64 (the
 * reference's few double expressions are then evaluated in double). Reductions over whole tensors (alpha,
 * sumSquares, squaredError, the losses) run in a fixed tree order: deterministic, but not the reference's
 * sequential order, so they agree to a relative 1e-6 rather than exactly.
 */
public final class OpenCLBackend implements Backend {
    private static final int PARTIALS = 64;
    private static final int TS = 16;
    /** Slots of the device scalar buffer (float2 each). */
    private static final int SLOT_ALPHA = 0, SLOT_SUM = 1, SLOT_MEAN = 2;

    /** -Dbitskip.opencl.trace=true: finish and log every kernel launch (debugging). */
    private static final boolean TRACE = Boolean.getBoolean("bitskip.opencl.trace");

    private final OpenCLRuntime rt;
    private final List<OpenCLTensor> tensors = new ArrayList<>();
    private final cl_mem dummy, scalars, partials;
    private cl_mem rowLoss, dscore;
    private long rowLossBytes, dscoreBytes;
    private long allocated;
    /** Bytes this backend may allocate in all: the device's global memory unless a test lowers it. */
    private long budget = Long.MAX_VALUE;
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
        dummy = raw(16);
        scalars = raw(16 * 8);
        partials = raw(PARTIALS * 8);
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

    // ---- memory -------------------------------------------------------------------------------------

    private cl_mem raw(long bytes) {
        return clCreateBuffer(rt.context, CL_MEM_READ_WRITE, Math.max(bytes, 16), null, null);
    }

    @Override
    public Tensor alloc(String name, int n) {
        if (n < 0) {
            throw new IllegalArgumentException("tensor " + name + ": negative size " + n);
        }
        long bytes = Math.max(4L * n, 4);
        OpenCLDevices.Device d = rt.device;
        if (bytes > d.maxAllocBytes() || allocated + bytes > Math.min(budget, d.globalMemBytes())) {
            throw outOfMemory(name, bytes, null);
        }
        cl_mem m;
        try {
            m = clCreateBuffer(rt.context, CL_MEM_READ_WRITE, bytes, null, null);
            clEnqueueFillBuffer(rt.queue, m, Pointer.to(new float[] {0.0f}), Sizeof.cl_float, 0, bytes, 0, null,
                    null);
        } catch (CLException e) {
            throw outOfMemory(name, bytes, e);
        }
        allocated += bytes;
        OpenCLTensor t = new OpenCLTensor(this, name, n, m);
        tensors.add(t);
        return t;
    }

    private IllegalStateException outOfMemory(String name, long bytes, Exception cause) {
        OpenCLDevices.Device d = rt.device;
        return new IllegalStateException(String.format(java.util.Locale.ROOT,
                "OpenCL device %s (%s) lacks memory for tensor %s: %.1f MiB requested, %.1f MiB already allocated,"
                        + " device global memory %.1f MiB%s, largest single buffer %.1f MiB%s",
                d.id(), d.name(), name, bytes / 1048576.0, allocated / 1048576.0, d.globalMemBytes() / 1048576.0,
                budget < d.globalMemBytes() ? String.format(java.util.Locale.ROOT, " (of it usable here %.1f MiB)", budget / 1048576.0) : "",
                d.maxAllocBytes() / 1048576.0, OpenCLDevices.listing()), cause);
    }

    /**
     * Lowers the bytes this backend may allocate in all. For tests: exhausting the real global memory of a CPU
     * device (PoCL) would fill the host's RAM, so the out-of-memory path is tested against a small budget.
     */
    void limitMemory(long bytes) {
        budget = bytes;
    }

    /** Bytes of tensors allocated by this backend. */
    public long allocatedBytes() {
        return allocated;
    }

    private OpenCLTensor t(Tensor x) {
        if (x == null) {
            return null;
        }
        if (x instanceof OpenCLTensor o && o.owner == this) {
            if (o.mem == null) {
                throw new IllegalStateException("tensor " + x.name() + " was released (backend closed)");
            }
            return o;
        }
        throw new IllegalArgumentException("tensor " + x.name() + " belongs to another backend ("
                + x.getClass().getSimpleName() + "), not to this OpenCL backend");
    }

    private static void need(Tensor x, long n, String what) {
        if (x == null) {
            throw new IllegalArgumentException("argument " + what + " is null; expected " + n + " floats");
        }
        if (x.size() < n) {
            throw new IllegalArgumentException("tensor " + x.name() + " has " + x.size() + " floats, expected at least "
                    + n + " (" + what + ")");
        }
    }

    private void fillZero(cl_mem m, long n) {
        if (n > 0) {
            clEnqueueFillBuffer(rt.queue, m, Pointer.to(new float[] {0.0f}), Sizeof.cl_float, 0, 4 * n, 0, null, null);
        }
    }

    @Override
    public void zero(Tensor x) {
        OpenCLTensor o = t(x);
        fillZero(o.mem, o.size);
    }

    @Override
    public void upload(Tensor dst, float[] src) {
        need(dst, src.length, "the uploaded array's length");
        if (src.length > 0) {
            clEnqueueWriteBuffer(rt.queue, t(dst).mem, CL_TRUE, 0, 4L * src.length, Pointer.to(src), 0, null, null);
        }
    }

    @Override
    public void download(Tensor src, float[] dst) {
        need(src, dst.length, "the destination array's length");
        if (dst.length > 0) {
            clEnqueueReadBuffer(rt.queue, t(src).mem, CL_TRUE, 0, 4L * dst.length, Pointer.to(dst), 0, null, null);
        }
    }

    @Override
    public void copy(Tensor dst, Tensor src, int n) {
        copy(dst, 0, src, 0, n);
    }

    @Override
    public void copy(Tensor dst, int dstOffset, Tensor src, int srcOffset, int n) {
        need(src, (long) srcOffset + n, "copy source range");
        need(dst, (long) dstOffset + n, "copy destination range");
        if (n <= 0) {
            return;
        }
        OpenCLTensor d = t(dst), s = t(src);
        if (d == s && Math.abs(dstOffset - srcOffset) < n) {
            if (dstOffset == srcOffset) {
                return;
            }
            cl_mem tmp = raw(4L * n);
            clEnqueueCopyBuffer(rt.queue, s.mem, tmp, 4L * srcOffset, 0, 4L * n, 0, null, null);
            clEnqueueCopyBuffer(rt.queue, tmp, d.mem, 0, 4L * dstOffset, 4L * n, 0, null, null);
            clReleaseMemObject(tmp);
            return;
        }
        clEnqueueCopyBuffer(rt.queue, s.mem, d.mem, 4L * srcOffset, 4L * dstOffset, 4L * n, 0, null, null);
    }

    /** A read-only device copy of ints (tokens, targets, skip flags); released once the queue is done with it. */
    private cl_mem ints(int[] a) {
        int[] src = a.length == 0 ? new int[1] : a;
        return clCreateBuffer(rt.context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, 4L * src.length,
                Pointer.to(src), null);
    }

    // ---- kernel launches ------------------------------------------------------------------------------

    /** A __local argument of this many bytes. */
    private record Local(long bytes) {}

    private void launch(String name, long[] global, long[] local, Object... args) {
        synchronized (rt) {
            cl_kernel k = rt.kernel(name);
            for (int i = 0; i < args.length; i++) {
                Object a = args[i];
                if (a == null) {
                    clSetKernelArg(k, i, Sizeof.cl_mem, Pointer.to(dummy));
                } else if (a instanceof Tensor x) {
                    clSetKernelArg(k, i, Sizeof.cl_mem, Pointer.to(t(x).mem));
                } else if (a instanceof cl_mem m) {
                    clSetKernelArg(k, i, Sizeof.cl_mem, Pointer.to(m));
                } else if (a instanceof Integer v) {
                    clSetKernelArg(k, i, Sizeof.cl_int, Pointer.to(new int[] {v}));
                } else if (a instanceof Boolean v) {
                    clSetKernelArg(k, i, Sizeof.cl_int, Pointer.to(new int[] {v ? 1 : 0}));
                } else if (a instanceof Float v) {
                    clSetKernelArg(k, i, Sizeof.cl_float, Pointer.to(new float[] {v}));
                } else if (a instanceof Long v) {
                    clSetKernelArg(k, i, Sizeof.cl_long, Pointer.to(new long[] {v}));
                } else if (a instanceof Local l) {
                    clSetKernelArg(k, i, l.bytes(), null);
                } else {
                    throw new IllegalArgumentException("kernel " + name + " argument " + i + ": " + a.getClass());
                }
            }
            if (TRACE) {
                System.err.println("opencl: " + name + " " + java.util.Arrays.toString(global) + " "
                        + java.util.Arrays.deepToString(args));
            }
            clEnqueueNDRangeKernel(rt.queue, k, global.length, null, global, local, 0, null, null);
            if (TRACE) {
                clFinish(rt.queue);
            }
        }
    }

    /** One work-item per element of n. */
    private void run(String name, long n, Object... args) {
        if (n > 0) {
            launch(name, new long[] {n}, null, args);
        }
    }

    private static long roundUp(long n, long m) {
        return (n + m - 1) / m * m;
    }

    /** C(m, n) = [C +] bias(n) + Σ_k A(m, k)·B(k, n) with element strides (the reference's k order). */
    private void gemm(int M, int N, int K, Tensor A, int offA, int sam, int sak, Tensor B, int offB, int sbk, int sbn,
                      Tensor C, int offC, int ldc, Tensor bias, boolean accumulate) {
        launch("gemm", new long[] {roundUp(M, TS), roundUp(N, TS)}, new long[] {TS, TS}, M, N, K, A, offA, sam, sak,
                B, offB, sbk, sbn, C, offC, ldc, bias, bias != null, accumulate);
    }

    /** Sum over n terms (mode as in reduce_partial) into scalars[slot] (post as in reduce_final). */
    private void reduce(int mode, Object a, Object b, int n, float target, int post, int slot) {
        int groups = (int) Math.max(1, Math.min(PARTIALS, (n + (long) rt.rwg - 1) / rt.rwg));
        launch("reduce_partial", new long[] {(long) groups * rt.rwg}, new long[] {rt.rwg}, mode, a, b, n, target,
                partials);
        launch("reduce_final", new long[] {rt.rwg}, new long[] {rt.rwg}, partials, groups, post, n, scalars, slot);
    }

    private float[] readSlot(int slot) {
        float[] v = new float[2];
        clEnqueueReadBuffer(rt.queue, scalars, CL_TRUE, 8L * slot, 8, Pointer.to(v), 0, null, null);
        return v;
    }

    private double reduceToHost(int mode, Object a, Object b, int n, float target) {
        reduce(mode, a, b, n, target, 0, SLOT_SUM);
        float[] v = readSlot(SLOT_SUM);
        return (double) v[0] + (double) v[1];
    }

    private static void checkTokens(int[] tokens, int N, int V, String what) {
        if (tokens.length < N) {
            throw new IllegalArgumentException("argument " + what + " (int[]) has length " + tokens.length
                    + ", expected at least " + N + " (N)");
        }
        for (int n = 0; n < N; n++) {
            if (tokens[n] < 0 || tokens[n] >= V) {
                throw new IllegalArgumentException("argument " + what + "[" + n + "] = " + tokens[n]
                        + ": token id must be in [0, V) with V = " + V);
            }
        }
    }

    // ---- embedding ---------------------------------------------------------------------------------

    @Override
    public void embeddingForward(Tensor out, int[] tokens, Tensor wte, int N, int C, int V) {
        need(out, (long) N * C, "out N*C");
        need(wte, (long) V * C, "wte V*C");
        checkTokens(tokens, N, V, "tokens");
        cl_mem tok = ints(tokens);
        run("embedding_forward", (long) N * C, out, tok, wte, N, C);
        clReleaseMemObject(tok);
    }

    @Override
    public void embeddingBackward(Tensor dwte, Tensor dout, int[] tokens, int N, int C, int V) {
        need(dwte, (long) V * C, "dwte V*C");
        need(dout, (long) N * C, "dout N*C");
        checkTokens(tokens, N, V, "tokens");
        cl_mem tok = ints(tokens);
        run("embedding_backward", C, dwte, dout, tok, N, C);
        clReleaseMemObject(tok);
    }

    @Override
    public void positionsForward(Tensor out, Tensor wpe, int B, int T, int C, int pos0, int maxT) {
        checkPositions(out, wpe, B, T, C, pos0, maxT);
        run("positions_forward", (long) B * T * C, out, wpe, B, T, C, pos0);
    }

    @Override
    public void positionsBackward(Tensor dwpe, Tensor dout, int B, int T, int C, int pos0, int maxT) {
        checkPositions(dout, dwpe, B, T, C, pos0, maxT);
        run("positions_backward", (long) T * C, dwpe, dout, B, T, C, pos0);
    }

    private static void checkPositions(Tensor act, Tensor table, int B, int T, int C, int pos0, int maxT) {
        need(act, (long) B * T * C, "B*T*C");
        need(table, (long) maxT * C, "maxT*C");
        if (pos0 < 0 || (long) pos0 + T > maxT) {
            throw new IllegalArgumentException("argument pos0 = " + pos0 + ": pos0 + T = " + ((long) pos0 + T)
                    + " must be within maxT = " + maxT);
        }
    }

    // ---- normalization, linear, pointwise ------------------------------------------------------------

    @Override
    public void layerNormForward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor weight, Tensor bias,
                                 int N, int C, float eps) {
        need(out, (long) N * C, "out N*C");
        need(inp, (long) N * C, "inp N*C");
        need(mean, N, "mean N");
        need(rstd, N, "rstd N");
        if ((weight == null) != (bias == null)) {
            throw new IllegalArgumentException("LayerNorm weight/bias: both present or both null");
        }
        run("layernorm_forward", N, out, mean, rstd, inp, weight, bias, weight != null, N, C, eps);
    }

    @Override
    public void layerNormBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp,
                                  Tensor weight, Tensor mean, Tensor rstd, int N, int C) {
        need(dinp, (long) N * C, "dinp N*C");
        need(dout, (long) N * C, "dout N*C");
        run("layernorm_backward_inp", N, dinp, dout, inp, weight, weight != null, mean, rstd, N, C);
        if (weight != null) {
            need(dweight, C, "dweight C");
            need(dbias, C, "dbias C");
            run("layernorm_backward_params", C, dweight, dbias, dout, inp, mean, rstd, N, C);
        }
    }

    @Override
    public void matmulForward(Tensor out, Tensor inp, Tensor weight, Tensor bias, int N, int C, int OC) {
        need(out, (long) N * OC, "out N*OC");
        need(inp, (long) N * C, "inp N*C");
        need(weight, (long) OC * C, "weight OC*C");
        if (bias != null) {
            need(bias, OC, "bias OC");
        }
        gemm(N, OC, C, inp, 0, C, 1, weight, 0, 1, C, out, 0, OC, bias, false);
    }

    @Override
    public void matmulBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight,
                               int N, int C, int OC) {
        need(dout, (long) N * OC, "dout N*OC");
        if (dinp != null) {
            need(dinp, (long) N * C, "dinp N*C");
            need(weight, (long) OC * C, "weight OC*C");
            gemm(N, C, OC, dout, 0, OC, 1, weight, 0, C, 1, dinp, 0, C, null, true);
        }
        if (dweight != null) {
            need(dweight, (long) OC * C, "dweight OC*C");
            need(inp, (long) N * C, "inp N*C");
            gemm(OC, C, N, dout, 0, 1, OC, inp, 0, C, 1, dweight, 0, C, null, true);
        }
        if (dbias != null) {
            need(dbias, OC, "dbias OC");
            run("colsum_acc", OC, dbias, dout, N, OC);
        }
    }

    @Override
    public void relu2Forward(Tensor out, Tensor inp, int n) {
        run("relu2_forward", n, out, inp, n);
    }

    @Override
    public void relu2Backward(Tensor dinp, Tensor dout, Tensor inp, int n) {
        run("relu2_backward", n, dinp, dout, inp, n);
    }

    @Override
    public void add(Tensor out, Tensor a, Tensor b, int n) {
        need(out, n, "out n");
        run("add", n, out, a, b, n);
    }

    @Override
    public void accumulate(Tensor dst, Tensor src, int n) {
        need(dst, n, "dst n");
        need(src, n, "src n");
        run("add", n, dst, dst, src, n);
    }

    @Override
    public void scale(Tensor x, int n, float factor) {
        need(x, n, "n");
        run("scale", n, x, n, factor);
    }

    // ---- dropout -------------------------------------------------------------------------------------

    @Override
    public void dropoutMask(Tensor mask, int n, float p, long seed, long offset) {
        need(mask, n, "mask n");
        if (!(p >= 0.0f && p < 1.0f)) {
            throw new IllegalArgumentException("argument p = " + p + ": dropout probability must be in [0, 1)");
        }
        float keep = 1.0f / (1.0f - p);
        run("dropout_mask", n, mask, n, p, keep, seed, offset);
    }

    @Override
    public void dropoutForward(Tensor out, Tensor inp, Tensor mask, int n) {
        run("dropout_forward", n, out, inp, mask, n);
    }

    @Override
    public void dropoutBackward(Tensor dinp, Tensor dout, Tensor mask, int n) {
        run("dropout_backward", n, dinp, dout, mask, n);
    }

    // ---- layer skipping --------------------------------------------------------------------------------

    @Override
    public void selectSamples(Tensor out, Tensor computed, Tensor skipped, int[] skip, int B, int T, int C) {
        checkSkip(skip, B);
        cl_mem s = ints(skip);
        run("select_samples", (long) B * T * C, out, computed, skipped, s, B, T * C);
        clReleaseMemObject(s);
    }

    @Override
    public void selectSamplesBackward(Tensor dcomputed, Tensor dskipped, Tensor dout, int[] skip, int B, int T, int C) {
        checkSkip(skip, B);
        cl_mem s = ints(skip);
        run("select_samples_backward", (long) B * T * C, dcomputed, dskipped, dout, s, B, T * C);
        clReleaseMemObject(s);
    }

    private static void checkSkip(int[] skip, int B) {
        if (skip == null || skip.length < B) {
            throw new IllegalArgumentException("argument skip (int[]) has length "
                    + (skip == null ? "null" : skip.length) + ", expected at least " + B + " (B)");
        }
    }

    // ---- quantization --------------------------------------------------------------------------------

    /** alpha = max(mean|w|, 1e-6) into the device scalar slot, then Ŵ (and the codes); returns alpha. */
    @Override
    public float ternaryForward(Tensor wHat, byte[] codes, Tensor w, int n) {
        need(w, n, "w n");
        if (wHat != null) {
            need(wHat, n, "wHat n");
        }
        reduce(0, w, null, n, 0.0f, 1, SLOT_ALPHA);
        cl_mem c = null;
        if (codes != null) {
            if (codes.length < n) {
                throw new IllegalArgumentException("argument codes (byte[]) has length " + codes.length
                        + ", expected at least " + n + " (n)");
            }
            c = raw(n);
        }
        run("ternary_quantize", n, wHat, wHat != null, c, c != null, w, n, scalars, SLOT_ALPHA);
        if (c != null) {
            clEnqueueReadBuffer(rt.queue, c, CL_TRUE, 0, n, Pointer.to(codes), 0, null, null);
            clReleaseMemObject(c);
        }
        return readSlot(SLOT_ALPHA)[0];
    }

    @Override
    public double squaredError(Tensor w, Tensor wHat, int n) {
        need(w, n, "w n");
        need(wHat, n, "wHat n");
        return reduceToHost(2, w, wHat, n, 0.0f);
    }

    @Override
    public void squaredErrorBackward(Tensor dw, Tensor w, Tensor wHat, int n, float scale) {
        need(dw, n, "dw n");
        run("squared_error_backward", n, dw, w, wHat, n, scale);
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
        need(out, (long) N * OC, "out N*OC");
        need(inp, (long) N * C, "inp N*C");
        need(weight, (long) OC * C, "weight OC*C");
        float alpha = 1.0f;
        if (ternary) {
            alpha = ternaryForward(wHat, null, weight, OC * C);
        }
        if (actBits != 0) {
            need(xHat, (long) N * C, "xHat N*C (actBits != 0)");
            need(actScale, N, "actScale N (actBits != 0)");
            float Q = (float) ((1 << (actBits - 1)) - 1);
            run("activation_quantize", N, xHat, actScale, inp, N, C, Q);
        }
        Tensor x = actBits != 0 ? xHat : inp;
        Tensor w = ternary ? wHat : weight;
        if (relu2) {
            need(preact, (long) N * OC, "preact N*OC (relu2 is on)");
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
            need(dpreact, (long) N * OC, "dpreact N*OC (relu2 is on)");
            fillZero(t(dpreact).mem, (long) N * OC);
            relu2Backward(dpreact, dout, preact, N * OC);
            g = dpreact;
        }
        matmulBackward(dinp, dweight, null, g, x, w, N, C, OC);
    }

    /** In-place orthonormal FWHT of each of N rows of P (butterflies h = 1, 2, 4, ..., then one scaling). */
    private void fwht(Tensor x, int N, int P) {
        float scale = (float) (1.0 / Math.sqrt(P));
        if (4L * P <= rt.device.localMemBytes() / 2) {
            long ls = Math.max(1, Math.min(P / 2, Math.min(256, rt.device.maxWorkGroupSize())));
            launch("fwht_local", new long[] {N * ls}, new long[] {ls}, x, P, scale, new Local(4L * P));
        } else {
            run("fwht_row", N, x, N, P, scale);
        }
    }

    @Override
    public float hBitLinearForward(Tensor out, Tensor preact, Tensor zHat, Tensor actScale, Tensor wHat, Tensor z,
                                   Tensor lnOut, Tensor lnMean, Tensor lnRstd, Tensor inp, Tensor lnWeight,
                                   Tensor lnBias, Tensor weight, int N, int C, int P, int OC, float eps,
                                   int actBits, boolean ternary, boolean relu2) {
        checkPadded(C, P);
        need(z, (long) N * P, "z N*P");
        need(lnOut, (long) N * C, "lnOut N*C");
        need(weight, (long) OC * P, "weight OC*P (W lives in the rotated basis)");
        layerNormForward(lnOut, lnMean, lnRstd, inp, lnWeight, lnBias, N, C, eps);
        run("pad_forward", (long) N * P, z, lnOut, N, C, P);
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
        need(dz, (long) N * P, "dz N*P");
        need(dlnOut, (long) N * C, "dlnOut N*C");
        fillZero(t(dz).mem, (long) N * P);
        fillZero(t(dlnOut).mem, (long) N * C);
        bitLinearBackward(dz, dweight, dpreact, dout, preact, zHat, wHat, z, weight, N, P, OC, actBits, ternary,
                relu2);
        fwht(dz, N, P);
        run("pad_backward", (long) N * C, dlnOut, dz, N, C, P);
        layerNormBackward(dinp, dlnWeight, dlnBias, dlnOut, inp, lnWeight, lnMean, lnRstd, N, C);
    }

    private static void checkPadded(int C, int P) {
        if (P <= 0 || (P & (P - 1)) != 0 || P < C) {
            throw new IllegalArgumentException("argument P = " + P + ": must be a power of two >= C = " + C);
        }
    }

    // ---- attention ------------------------------------------------------------------------------------

    @Override
    public void ropeForward(Tensor out, Tensor inp, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0) {
        checkRope(out, inp, cos, sin, B, T, NH, HS, pos0);
        run("rope_forward", (long) B * T * NH * (HS / 2), out, inp, cos, sin, B, T, NH, HS, pos0);
    }

    @Override
    public void ropeBackward(Tensor dinp, Tensor dout, Tensor cos, Tensor sin, int B, int T, int NH, int HS,
                             int pos0) {
        checkRope(dinp, dout, cos, sin, B, T, NH, HS, pos0);
        run("rope_backward", (long) B * T * NH * (HS / 2), dinp, dout, cos, sin, B, T, NH, HS, pos0);
    }

    private static void checkRope(Tensor x, Tensor y, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0) {
        if (HS % 2 != 0) {
            throw new IllegalArgumentException("argument HS = " + HS + ": must be even");
        }
        long n = (long) B * T * NH * HS;
        need(x, n, "B*T*NH*HS");
        need(y, n, "B*T*NH*HS");
        need(cos, (long) (pos0 + T) * (HS / 2), "cos (pos0+T)*HS/2");
        need(sin, (long) (pos0 + T) * (HS / 2), "sin (pos0+T)*HS/2");
    }

    private void checkAttention(Tensor q, Tensor k, Tensor v, Tensor probs, Tensor dropMask, int B, int T, int NH,
                                int NKV, int HS) {
        if (NKV <= 0 || NH % NKV != 0) {
            throw new IllegalArgumentException("argument NKV = " + NKV + ": must divide NH = " + NH);
        }
        need(q, (long) B * T * NH * HS, "q B*T*NH*HS");
        need(k, (long) B * T * NKV * HS, "k B*T*NKV*HS");
        need(v, (long) B * T * NKV * HS, "v B*T*NKV*HS");
        need(probs, (long) B * NH * T * T, "probs B*NH*T*T");
        if (dropMask != null) {
            need(dropMask, (long) B * NH * T * T, "dropMask B*NH*T*T");
        }
    }

    @Override
    public void attentionForward(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor dropMask,
                                 int B, int T, int NH, int NKV, int HS) {
        checkAttention(q, k, v, probs, dropMask, B, T, NH, NKV, HS);
        need(out, (long) B * T * NH * HS, "out B*T*NH*HS");
        float scale = (float) (1.0 / Math.sqrt(HS));
        run("attention_forward", (long) B * NH * T, out, probs, q, k, v, dropMask, dropMask != null, B, T, NH, NKV,
                HS, scale);
    }

    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor scratch, Tensor dout, Tensor q, Tensor k,
                                  Tensor v, Tensor probs, Tensor dropMask, int B, int T, int NH, int NKV, int HS) {
        checkAttention(q, k, v, probs, dropMask, B, T, NH, NKV, HS);
        need(dq, (long) B * T * NH * HS, "dq B*T*NH*HS");
        need(dk, (long) B * T * NKV * HS, "dk B*T*NKV*HS");
        need(dv, (long) B * T * NKV * HS, "dv B*T*NKV*HS");
        need(dout, (long) B * T * NH * HS, "dout B*T*NH*HS");
        // The reference keeps one row of dscores in scratch (T); rows run in parallel here, so the backend
        // keeps its own (B, NH, T, T) buffer, allocated once for the largest shape.
        long bytes = 4L * B * NH * T * T;
        if (dscore == null || dscoreBytes < bytes) {
            if (dscore != null) {
                clReleaseMemObject(dscore);
            }
            dscore = raw(bytes);
            dscoreBytes = bytes;
        }
        float scale = (float) (1.0 / Math.sqrt(HS));
        run("attention_backward_q", (long) B * NH * T, dq, dscore, dout, q, k, v, probs, dropMask, dropMask != null,
                B, T, NH, NKV, HS, scale);
        run("attention_backward_kv", (long) B * T * NKV * HS, dk, dv, dscore, dout, q, probs, dropMask,
                dropMask != null, B, T, NH, NKV, HS);
    }

    // ---- routing -------------------------------------------------------------------------------------

    @Override
    public void routerForward(Tensor p, Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h,
                              Tensor lnWeight, Tensor lnBias, Tensor w1, Tensor b1, Tensor w2, Tensor b2,
                              int N, int C, int H, float eps) {
        need(p, N, "p N");
        need(hidden, (long) N * H, "hidden N*H");
        layerNormForward(ln, lnMean, lnRstd, h, lnWeight, lnBias, N, C, eps);
        matmulForward(hidden, ln, w1, b1, N, C, H);
        run("relu_forward", (long) N * H, hidden, hidden, N * H);
        matmulForward(p, hidden, w2, b2, N, H, 1);
        run("sigmoid_forward", N, p, p, N);
    }

    @Override
    public void routerBackward(Tensor dh, Tensor dlnWeight, Tensor dlnBias, Tensor dw1, Tensor db1, Tensor dw2,
                               Tensor db2, Tensor dlogit, Tensor dhidden, Tensor dpre, Tensor dln, Tensor dp,
                               Tensor p, Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h,
                               Tensor lnWeight, Tensor w1, Tensor w2, int N, int C, int H) {
        need(dlogit, N, "dlogit N");
        need(dhidden, (long) N * H, "dhidden N*H");
        need(dpre, (long) N * H, "dpre N*H");
        need(dln, (long) N * C, "dln N*C");
        fillZero(t(dlogit).mem, N);
        fillZero(t(dhidden).mem, (long) N * H);
        fillZero(t(dpre).mem, (long) N * H);
        fillZero(t(dln).mem, (long) N * C);
        run("sigmoid_backward", N, dlogit, dp, p, N);
        matmulBackward(dhidden, dw2, db2, dlogit, hidden, w2, N, H, 1);
        run("relu_backward", (long) N * H, dpre, dhidden, hidden, N * H);
        matmulBackward(dln, dw1, db1, dpre, ln, w1, N, C, H);
        layerNormBackward(dh, dlnWeight, dlnBias, dln, h, lnWeight, lnMean, lnRstd, N, C);
    }

    @Override
    public double routingLossForward(Tensor lbar, Tensor pExit, int L, int N, float target, boolean batchMean) {
        need(lbar, N, "lbar N");
        need(pExit, (long) L * N, "pExit L*N");
        run("routing_lbar", N, lbar, pExit, L, N);
        if (batchMean) {
            double d = reduceToHost(3, lbar, null, N, 0.0f) / N - target;
            return d * d;
        }
        return reduceToHost(4, lbar, null, N, target) / N;
    }

    @Override
    public void routingLossBackward(Tensor dpExit, Tensor pExit, Tensor lbar, int L, int N, float target,
                                    boolean batchMean, float gradScale) {
        need(dpExit, (long) L * N, "dpExit L*N");
        need(pExit, (long) L * N, "pExit L*N");
        need(lbar, N, "lbar N");
        if (batchMean) {
            reduce(3, lbar, null, N, 0.0f, 2, SLOT_MEAN);
        }
        run("routing_backward", N, dpExit, pExit, lbar, L, N, target, batchMean, gradScale, scalars, SLOT_MEAN);
    }

    // ---- the LM head and its loss --------------------------------------------------------------------

    @Override
    public double headLoss(Tensor x, Tensor head, int[] targets, int N, int C, int V, float gradScale, Tensor dx,
                           Tensor dhead, Tensor logits, Tensor dlogits, int chunkRows) {
        if (chunkRows <= 0) {
            throw new IllegalArgumentException("argument chunkRows = " + chunkRows + ": must be positive");
        }
        if (targets.length < N) {
            throw new IllegalArgumentException("argument targets (int[]) has length " + targets.length
                    + ", expected at least " + N + " (N)");
        }
        for (int r = 0; r < N; r++) {
            if (targets[r] < -1 || targets[r] >= V) {
                throw new IllegalArgumentException("argument targets[" + r + "] = " + targets[r]
                        + ": must be -1 (ignored) or in [0, V) with V = " + V);
            }
        }
        need(x, (long) N * C, "x N*C");
        need(head, (long) V * C, "head V*C");
        need(logits, (long) Math.min(chunkRows, N) * V, "logits min(chunkRows, N)*V");
        boolean grad = dx != null;
        if (grad) {
            need(dx, (long) N * C, "dx N*C");
            need(dhead, (long) V * C, "dhead V*C");
            need(dlogits, (long) Math.min(chunkRows, N) * V, "dlogits min(chunkRows, N)*V");
        }
        long bytes = 8L * N;
        if (rowLoss == null || rowLossBytes < bytes) {
            if (rowLoss != null) {
                clReleaseMemObject(rowLoss);
            }
            rowLoss = raw(bytes);
            rowLossBytes = bytes;
        }
        cl_mem tg = ints(targets);
        for (int r0 = 0; r0 < N; r0 += chunkRows) {
            int R = Math.min(chunkRows, N - r0);
            gemm(R, V, C, x, r0 * C, C, 1, head, 0, 1, C, logits, 0, V, null, false);
            launch("cross_entropy", new long[] {(long) R * rt.rwg}, new long[] {rt.rwg}, logits,
                    grad ? dlogits : null, grad, tg, r0, V, gradScale, rowLoss);
            if (grad) {
                gemm(R, C, V, dlogits, 0, V, 1, head, 0, C, 1, dx, r0 * C, C, null, true);
                gemm(V, C, R, dlogits, 0, 1, V, x, r0 * C, C, 1, dhead, 0, C, null, true);
            }
        }
        clReleaseMemObject(tg);
        return reduceToHost(5, rowLoss, null, N, 0.0f);
    }

    // ---- optimizer -------------------------------------------------------------------------------------

    @Override
    public double sumSquares(Tensor g, int n) {
        need(g, n, "g n");
        return reduceToHost(1, g, null, n, 0.0f);
    }

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, float lr, float beta1, float beta2,
                      float eps, float weightDecay, int step) {
        need(param, n, "param n");
        need(grad, n, "grad n");
        need(m, n, "m n");
        need(v, n, "v n");
        if (step < 1) {
            throw new IllegalArgumentException("argument step = " + step + ": must be >= 1 (the first update is step 1)");
        }
        // the scalars exactly as AdamW.update computes them (double, rounded once)
        double bc1 = 1.0 - Math.pow(beta1, step);
        double bc2 = 1.0 - Math.pow(beta2, step);
        float negStepSize = (float) (-(lr / bc1));
        float bc2Sqrt = (float) Math.sqrt(bc2);
        float decay = (float) (1.0 - (double) lr * weightDecay);
        float w1 = (float) (1.0 - beta1);
        float oneMinusBeta2 = (float) (1.0 - beta2);
        run("adamw", n, param, grad, m, v, n, decay, w1, beta2, oneMinusBeta2, bc2Sqrt, negStepSize, eps);
    }

    @Override
    public void sync() {
        clFinish(rt.queue);
    }

    /** Releases every tensor of this backend (the device's compiled program stays cached). */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        clFinish(rt.queue);
        for (OpenCLTensor x : tensors) {
            if (x.mem != null) {
                clReleaseMemObject(x.mem);
                x.mem = null;
            }
        }
        tensors.clear();
        allocated = 0;
        for (cl_mem m : new cl_mem[] {dummy, scalars, partials, rowLoss, dscore}) {
            if (m != null) {
                clReleaseMemObject(m);
            }
        }
    }
}
