package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;

import bitskip.engine.Backend;
import bitskip.engine.Tensor;
import bitskip.kernels.Check;
import bitskip.kernels.Dropout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fast CPU backend: float GEMMs through OpenBLAS, everything else multi-threaded Java with the Vector API.
 *
 * <p><b>Storage.</b> Tensors live off the Java heap ({@link CpuTensor}: JavaCPP memory, a direct ByteBuffer
 * view for Java code). Measured on the 512×128·(50257×128)ᵀ head GEMM (2 cores): heap {@code float[]} through
 * the {@code float[]} overload of {@code cblas_sgemm} ran at 56–70 GFLOP/s because JavaCPP copies Java arrays
 * in and out (GetFloatArrayElements, 100 MB of logits per call), off-heap {@code FloatPointer} at 180–195
 * GFLOP/s with no copy; Vector API loads from a direct ByteBuffer measured as fast as from an array. Row
 * offsets (the head's row chunks) are pointer offsets, never copies.
 *
 * <p><b>Threads.</b> {@code threads} (constructor, else system property {@code bitskip.threads}, else the
 * available processors) is both OpenBLAS's thread count and the size of this backend's {@link Pool}. Every
 * non-GEMM op splits its rows (or columns, or heads, or fixed-size blocks) into contiguous parts; each part
 * owns its outputs, so there are no races and no atomics, and every reduction has a fixed order: results are
 * bit-identical run to run for a given thread count (and most are independent of it: reductions over a
 * whole tensor use fixed 8192-element blocks summed in block order, column reductions run in row order).
 * GEMMs run on the calling thread with OpenBLAS's own threads; they never overlap a pool job.
 *
 * <p><b>Vector switch.</b> {@code vector} (constructor, else system property {@code bitskip.cpu.vector},
 * default true) selects the Vector API ({@link FloatVector#SPECIES_PREFERRED}) loops; false selects plain scalar
 * loops that follow the kernels' operation order. Both paths are tested against {@code JavaBackend}.
 *
 * <p><b>Exactness against the kernels</b> (same inputs): ternaryForward (alpha summed sequentially in double as
 * the kernel does, so alpha, Ŵ and codes are bit-exact), the activation quantizer (scale, x̂), relu2, add,
 * accumulate, scale, dropout, selectSamples, embeddings, rope, the FWHT stage itself, and adamW are bit-exact on
 * both paths. GEMM-based ops, LayerNorm (vector sums), attention, softmax/cross-entropy (vector exp in float,
 * blocked sums) and the double reductions (sumSquares, squaredError: different summation order) agree within
 * the tolerances stated in {@code CpuBackendEquivalenceTest}.
 *
 * <p><b>headLoss.</b> Chunks of at most min(chunkRows, N, {@link #HEAD_CHUNK}) rows: logits = x_chunk·headᵀ
 * (sgemm into the logits scratch), the fused softmax/cross-entropy per row in parallel writing the gradient in
 * place over the logits (the dlogits scratch is not used), then dx_chunk += dlogits·head and dhead +=
 * dlogitsᵀ·x_chunk (two sgemms, beta 1).
 *
 * <p>An instance is not thread-safe (one training loop drives it). Buffers this backend needs beyond its
 * arguments (per-part attention rows, per-block partial sums, per-row losses) are planned on first use and
 * grown, never reallocated per call in steady state.
 */
public final class CpuBackend implements Backend {

    public static final String THREADS_PROPERTY = "bitskip.threads";
    public static final String VECTOR_PROPERTY = "bitskip.cpu.vector";

    /**
     * Largest head chunk in rows (system property {@code bitskip.cpu.headChunk}, default {@value #HEAD_CHUNK_DEFAULT}):
     * the chunk actually used is min(this, chunkRows, N), so the caller's logits scratch always suffices.
     */
    static final int HEAD_CHUNK_DEFAULT = 256;
    static final int HEAD_CHUNK = Math.max(1, Integer.getInteger("bitskip.cpu.headChunk", HEAD_CHUNK_DEFAULT));
    private static final int GRAIN = 1 << 14;     // elements per part, pointwise ops
    private static final int BLOCK = 8192;        // elements per partial sum, whole-tensor reductions

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int VL = S.length();
    private static final VectorSpecies<Double> DS = DoubleVector.SPECIES_PREFERRED;
    /** The float species whose lanes convert one to one into DS. */
    private static final VectorSpecies<Float> FH = VectorSpecies.of(float.class,
            jdk.incubator.vector.VectorShape.forBitSize(DS.length() * 32));
    /** 1.5·2^23: (v + M) − M rounds v to an integer, half to even, for |v| <= 2^22 (Math.rint on lanes). */
    private static final float RINT_MAGIC = 12582912.0f;

    private static int blasThreads = -1;

    private final int threads;
    private final boolean vector;
    private final Pool pool;
    private final Blas blas = new Blas();
    private float[][] rowScratch = new float[0][];
    private double[] partial = new double[0];
    private double[] rowLoss = new double[0];

    public CpuBackend() {
        this(Integer.getInteger(THREADS_PROPERTY, Runtime.getRuntime().availableProcessors()),
                !"false".equalsIgnoreCase(System.getProperty(VECTOR_PROPERTY, "true")));
    }

    public CpuBackend(int threads, boolean vector) {
        if (!available()) {
            throw new IllegalStateException("cpu backend: " + unavailableReason());
        }
        Check.arg(threads >= 1, "threads", threads, "must be >= 1");
        this.threads = threads;
        this.vector = vector;
        this.pool = new Pool(threads);
        blasThreads(threads);
    }

    /** Whether OpenBLAS and its JNI bridge load on this machine. */
    public static boolean available() {
        return Blas.loadError() == null;
    }

    /** Why {@link #available} is false (null when it is true). */
    public static String unavailableReason() {
        Throwable t = Blas.loadError();
        return t == null ? null : "OpenBLAS (org.bytedeco:openblas, native classifier for " + System.getProperty("os.name")
                + "/" + System.getProperty("os.arch") + ") could not be loaded: " + t;
    }

    private static synchronized void blasThreads(int n) {
        if (blasThreads != n) {
            Blas.setThreads(n);
            blasThreads = n;
        }
    }

    public int threads() {
        return threads;
    }

    public boolean vector() {
        return vector;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String description() {
        return "CPU: OpenBLAS sgemm (" + Blas.config() + ") + " + (vector ? "Vector API " + S : "scalar Java")
                + ", " + threads + " thread" + (threads == 1 ? "" : "s") + ", off-heap tensors";
    }

    @Override
    public void close() {
        pool.close();
    }

    /** GEMMs: (re)assert this backend's thread count, OpenBLAS's is process-wide. */
    private void sgemm(boolean tA, boolean tB, int M, int Nc, int K, float alpha, CpuTensor A, long aOff, int lda,
                       CpuTensor B, long bOff, int ldb, float beta, CpuTensor C, long cOff, int ldc) {
        blasThreads(threads);
        blas.sgemm(tA, tB, M, Nc, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
    }

    // ---- vector helpers ------------------------------------------------------------------------------

    private static FloatVector ld(ByteBuffer b, int i) {
        return VectorIO.load(S, b, i << 2);
    }

    private static void st(FloatVector v, ByteBuffer b, int i) {
        VectorIO.store(v, b, i << 2);
    }

    private static int vbound(int lo, int hi) {
        return lo + S.loopBound(hi - lo);
    }

    /** Per-part heap scratch; grows only through {@link #planScratch} before a parallel region reads it. */
    private float[] scratch(int part, int n) {
        if (rowScratch.length < threads) {
            float[][] r = new float[threads][];
            System.arraycopy(rowScratch, 0, r, 0, rowScratch.length);
            rowScratch = r;
        }
        if (rowScratch[part] == null || rowScratch[part].length < n) {
            rowScratch[part] = new float[n];
        }
        return rowScratch[part];
    }

    private void planScratch(int n) {
        for (int p = 0; p < threads; p++) {
            scratch(p, n);
        }
    }

    private double[] partials(int n) {
        if (partial.length < n) {
            partial = new double[n];
        }
        return partial;
    }

    // ---- memory ---------------------------------------------------------------------------------------

    @Override
    public Tensor alloc(String name, int n) {
        return new CpuTensor(name, n);
    }

    @Override
    public void zero(Tensor t) {
        of(t).ptr.zero();
    }

    @Override
    public void upload(Tensor dst, float[] src) {
        CpuTensor d = of(dst).need(src.length, "the uploaded array's length");
        d.fb.put(0, src);
    }

    @Override
    public void download(Tensor src, float[] dst) {
        CpuTensor s = of(src).need(dst.length, "the destination array's length");
        s.fb.get(0, dst);
    }

    @Override
    public void copy(Tensor dst, Tensor src, int n) {
        copy(dst, 0, src, 0, n);
    }

    @Override
    public void copy(Tensor dst, int dstOffset, Tensor src, int srcOffset, int n) {
        CpuTensor d = of(dst).need((long) dstOffset + n, "dstOffset+n");
        CpuTensor s = of(src).need((long) srcOffset + n, "srcOffset+n");
        Check.arg(n >= 0 && dstOffset >= 0 && srcOffset >= 0, "n/offsets", n, "must not be negative");
        if (n == 0) {
            return;
        }
        // absolute bulk copy: no position state, overlapping ranges of one tensor copy as memmove does
        d.bb.put(dstOffset << 2, s.bb, srcOffset << 2, n << 2);
    }

    // ---- embedding ----------------------------------------------------------------------------------------

    private static void checkTokens(int[] tokens, int N, int V) {
        Check.len(tokens, "tokens", N, "N");
        for (int n = 0; n < N; n++) {
            if (tokens[n] < 0 || tokens[n] >= V) {
                Check.arg(false, "tokens[" + n + "]", tokens[n], "token id must be in [0, V) with V = " + V);
            }
        }
    }

    @Override
    public void embeddingForward(Tensor out, int[] tokens, Tensor wte, int N, int C, int V) {
        Check.positive("N", N, "C", C, "V", V);
        CpuTensor o = of(out).need((long) N * C, "N*C");
        CpuTensor w = of(wte).need((long) V * C, "V*C");
        checkTokens(tokens, N, V);
        pool.forRange(N, Math.max(1, GRAIN / C), (p, lo, hi) -> {
            for (int n = lo; n < hi; n++) {
                o.bb.put(n * C * 4, w.bb, tokens[n] * C * 4, C * 4);
            }
        });
    }

    @Override
    public void embeddingBackward(Tensor dwte, Tensor dout, int[] tokens, int N, int C, int V) {
        Check.positive("N", N, "C", C, "V", V);
        CpuTensor dw = of(dwte).need((long) V * C, "V*C");
        CpuTensor d = of(dout).need((long) N * C, "N*C");
        checkTokens(tokens, N, V);
        // parts own column ranges; rows in order, so a repeated token sums exactly as the kernel does
        pool.forRange(C, 16, (p, c0, c1) -> {
            for (int n = 0; n < N; n++) {
                addInto(dw.bb, tokens[n] * C + c0, d.bb, n * C + c0, c1 - c0);
            }
        });
    }

    /** dst[d..d+len) += src[s..s+len). */
    private void addInto(ByteBuffer dst, int d, ByteBuffer src, int s, int len) {
        int i = 0;
        if (vector) {
            for (; i < S.loopBound(len); i += VL) {
                st(ld(dst, d + i).add(ld(src, s + i)), dst, d + i);
            }
        }
        for (; i < len; i++) {
            dst.putFloat((d + i) << 2, dst.getFloat((d + i) << 2) + src.getFloat((s + i) << 2));
        }
    }

    private static void checkPositions(int B, int T, int C, int pos0, int maxT) {
        Check.positive("B", B, "T", T, "C", C, "maxT", maxT);
        Check.arg(pos0 >= 0, "pos0", pos0, "must be non-negative");
        Check.arg((long) pos0 + T <= maxT, "pos0", pos0,
                "pos0 + T = " + ((long) pos0 + T) + " exceeds maxT = " + maxT + " (the position table's rows)");
    }

    @Override
    public void positionsForward(Tensor out, Tensor wpe, int B, int T, int C, int pos0, int maxT) {
        checkPositions(B, T, C, pos0, maxT);
        CpuTensor o = of(out).need((long) B * T * C, "B*T*C");
        CpuTensor w = of(wpe).need((long) maxT * C, "maxT*C");
        pool.forRange(B * T, Math.max(1, GRAIN / C), (p, lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                addInto(o.bb, r * C, w.bb, (pos0 + r % T) * C, C);
            }
        });
    }

    @Override
    public void positionsBackward(Tensor dwpe, Tensor dout, int B, int T, int C, int pos0, int maxT) {
        checkPositions(B, T, C, pos0, maxT);
        CpuTensor dw = of(dwpe).need((long) maxT * C, "maxT*C");
        CpuTensor d = of(dout).need((long) B * T * C, "B*T*C");
        planScratch(C); // grown here, never inside the parallel body
        pool.forRange(T, Math.max(1, GRAIN / (B * C)), (p, lo, hi) -> {
            float[] acc = scratch(p, C);
            for (int t = lo; t < hi; t++) {
                java.util.Arrays.fill(acc, 0, C, 0.0f);
                for (int b = 0; b < B; b++) {
                    int row = (b * T + t) * C;
                    for (int c = 0; c < C; c++) {
                        acc[c] += d.fb.get(row + c);
                    }
                }
                int dst = (pos0 + t) * C;
                for (int c = 0; c < C; c++) {
                    dw.fb.put(dst + c, dw.fb.get(dst + c) + acc[c]);
                }
            }
        });
    }

    // ---- LayerNorm ---------------------------------------------------------------------------------------

    @Override
    public void layerNormForward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor weight, Tensor bias,
                                 int N, int C, float eps) {
        Check.positive("N", N, "C", C);
        CpuTensor o = of(out).need((long) N * C, "N*C");
        CpuTensor m = of(mean).need(N, "N");
        CpuTensor r = of(rstd).need(N, "N");
        CpuTensor x = of(inp).need((long) N * C, "N*C");
        Check.arg((weight == null) == (bias == null), "weight/bias", weight == null ? "null/non-null" : "non-null/null",
                "both present or both null");
        CpuTensor w = weight == null ? null : of(weight).need(C, "C");
        CpuTensor b = bias == null ? null : of(bias).need(C, "C");
        Check.arg(eps > 0.0f, "eps", eps, "must be positive");
        pool.forRange(N, Math.max(1, GRAIN / C), (p, lo, hi) -> {
            for (int n = lo; n < hi; n++) {
                lnRow(o.bb, m.fb, r.fb, x.bb, w, b, n, C, eps);
            }
        });
    }

    private void lnRow(ByteBuffer out, FloatBuffer mean, FloatBuffer rstd, ByteBuffer x, CpuTensor w, CpuTensor b,
                       int n, int C, float eps) {
        int row = n * C;
        int vb = vector ? S.loopBound(C) : 0;
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

    @Override
    public void layerNormBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight,
                                  Tensor mean, Tensor rstd, int N, int C) {
        Check.positive("N", N, "C", C);
        CpuTensor dx = of(dinp).need((long) N * C, "N*C");
        CpuTensor dy = of(dout).need((long) N * C, "N*C");
        CpuTensor x = of(inp).need((long) N * C, "N*C");
        CpuTensor m = of(mean).need(N, "N");
        CpuTensor r = of(rstd).need(N, "N");
        CpuTensor w = null, dw = null, db = null;
        if (weight != null) {
            w = of(weight).need(C, "C");
            dw = of(dweight).need(C, "C");
            db = of(dbias).need(C, "C");
        } else {
            Check.arg(dweight == null && dbias == null, "dweight/dbias", "non-null",
                    "must be null for a parameter-free LayerNorm (weight null)");
        }
        final CpuTensor fw = w, fdw = dw, fdb = db;
        // pass 1, rows: dinp
        pool.forRange(N, Math.max(1, GRAIN / C), (p, lo, hi) -> {
            for (int n = lo; n < hi; n++) {
                lnBackRow(dx.bb, dy.bb, x.bb, fw, m.fb.get(n), r.fb.get(n), n, C);
            }
        });
        // pass 2, columns: dweight, dbias summed over rows in row order (as the kernel, element by element)
        if (fw != null) {
            pool.forRange(C, 32, (p, c0, c1) -> {
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
        int vb = vector ? S.loopBound(C) : 0;
        float dnormMean = 0.0f, dnormNormMean = 0.0f;
        int c = 0;
        if (vb > 0) {
            FloatVector a1 = FloatVector.zero(S), a2 = FloatVector.zero(S);
            for (; c < vb; c += VL) {
                FloatVector norm = ld(x, row + c).sub(m).mul(s);
                FloatVector dnorm = w == null ? ld(dy, row + c) : ld(dy, row + c).mul(ld(w.bb, c));
                a1 = a1.add(dnorm);
                a2 = a2.add(dnorm.mul(norm));
            }
            dnormMean = Lanes.sum(a1);
            dnormNormMean = Lanes.sum(a2);
        }
        for (; c < C; c++) {
            float norm = (x.getFloat((row + c) << 2) - m) * s;
            float g = dy.getFloat((row + c) << 2);
            float dnorm = w == null ? g : g * w.fb.get(c);
            dnormMean += dnorm;
            dnormNormMean += dnorm * norm;
        }
        dnormMean = dnormMean / C;
        dnormNormMean = dnormNormMean / C;
        c = 0;
        for (; c < vb; c += VL) {
            FloatVector norm = ld(x, row + c).sub(m).mul(s);
            FloatVector dnorm = w == null ? ld(dy, row + c) : ld(dy, row + c).mul(ld(w.bb, c));
            FloatVector t = dnorm.sub(dnormMean).sub(norm.mul(dnormNormMean)).mul(s);
            st(ld(dx, row + c).add(t), dx, row + c);
        }
        for (; c < C; c++) {
            float norm = (x.getFloat((row + c) << 2) - m) * s;
            float g = dy.getFloat((row + c) << 2);
            float dnorm = w == null ? g : g * w.fb.get(c);
            int at = (row + c) << 2;
            dx.putFloat(at, dx.getFloat(at) + s * (dnorm - dnormMean - norm * dnormNormMean));
        }
    }

    // ---- matmul -----------------------------------------------------------------------------------------

    @Override
    public void matmulForward(Tensor out, Tensor inp, Tensor weight, Tensor bias, int N, int C, int OC) {
        Check.positive("N", N, "C", C, "OC", OC);
        CpuTensor o = of(out).need((long) N * OC, "N*OC");
        CpuTensor x = of(inp).need((long) N * C, "N*C");
        CpuTensor w = of(weight).need((long) OC * C, "OC*C");
        float beta = 0.0f;
        if (bias != null) {
            CpuTensor b = of(bias).need(OC, "OC");
            pool.forRange(N, Math.max(1, GRAIN / OC), (p, lo, hi) -> {
                for (int n = lo; n < hi; n++) {
                    o.bb.put(n * OC * 4, b.bb, 0, OC * 4);
                }
            });
            beta = 1.0f;
        }
        sgemm(false, true, N, OC, C, 1.0f, x, 0, C, w, 0, C, beta, o, 0, OC);
    }

    @Override
    public void matmulBackward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight,
                               int N, int C, int OC) {
        Check.positive("N", N, "C", C, "OC", OC);
        CpuTensor g = of(dout).need((long) N * OC, "N*OC");
        if (dinp != null) {
            CpuTensor dx = of(dinp).need((long) N * C, "N*C");
            CpuTensor w = of(weight).need((long) OC * C, "OC*C");
            sgemm(false, false, N, C, OC, 1.0f, g, 0, OC, w, 0, C, 1.0f, dx, 0, C);
        }
        if (dweight != null) {
            CpuTensor dw = of(dweight).need((long) OC * C, "OC*C");
            CpuTensor x = of(inp).need((long) N * C, "N*C");
            sgemm(true, false, OC, C, N, 1.0f, g, 0, OC, x, 0, C, 1.0f, dw, 0, C);
        }
        if (dbias != null) {
            CpuTensor db = of(dbias).need(OC, "OC");
            pool.forRange(OC, 32, (p, o0, o1) -> {
                for (int n = 0; n < N; n++) {
                    addInto(db.bb, o0, g.bb, n * OC + o0, o1 - o0);
                }
            });
        }
    }

    // ---- pointwise ----------------------------------------------------------------------------------------

    private static void checkN(int n) {
        Check.positive("n", n);
    }

    @Override
    public void relu2Forward(Tensor out, Tensor inp, int n) {
        checkN(n);
        CpuTensor o = of(out).need(n, "n");
        CpuTensor x = of(inp).need(n, "n");
        pool.forRange(n, GRAIN, (p, lo, hi) -> relu2Range(o.bb, x.bb, lo, hi));
    }

    private void relu2Range(ByteBuffer o, ByteBuffer x, int lo, int hi) {
        int i = lo;
        if (vector) {
            for (; i < vbound(lo, hi); i += VL) {
                FloatVector r = ld(x, i).max(0.0f);
                st(r.mul(r), o, i);
            }
        }
        for (; i < hi; i++) {
            float v = x.getFloat(i << 2);
            float r = v > 0.0f ? v : 0.0f;
            o.putFloat(i << 2, r * r);
        }
    }

    @Override
    public void relu2Backward(Tensor dinp, Tensor dout, Tensor inp, int n) {
        checkN(n);
        CpuTensor dx = of(dinp).need(n, "n");
        CpuTensor dy = of(dout).need(n, "n");
        CpuTensor x = of(inp).need(n, "n");
        pool.forRange(n, GRAIN, (p, lo, hi) -> relu2BackRange(dx.bb, dy.bb, x.bb, lo, hi, false));
    }

    /** dx (+)= dy·2·x where x > 0 (overwrite: dx = 0 + that, as a zeroed scratch accumulated into). */
    private void relu2BackRange(ByteBuffer dx, ByteBuffer dy, ByteBuffer x, int lo, int hi, boolean overwrite) {
        int i = lo;
        if (vector) {
            FloatVector zero = FloatVector.zero(S);
            for (; i < vbound(lo, hi); i += VL) {
                FloatVector xv = ld(x, i);
                VectorMask<Float> pos = xv.compare(VectorOperators.GT, 0.0f);
                FloatVector base = overwrite ? zero : ld(dx, i);
                st(base.add(ld(dy, i).mul(2.0f).mul(xv), pos), dx, i);
            }
        }
        for (; i < hi; i++) {
            float xv = x.getFloat(i << 2);
            float base = overwrite ? 0.0f : dx.getFloat(i << 2);
            if (xv > 0.0f) {
                base += dy.getFloat(i << 2) * 2.0f * xv;
            }
            dx.putFloat(i << 2, base);
        }
    }

    @Override
    public void add(Tensor out, Tensor a, Tensor b, int n) {
        checkN(n);
        CpuTensor o = of(out).need(n, "n");
        CpuTensor x = of(a).need(n, "n");
        CpuTensor y = of(b).need(n, "n");
        pool.forRange(n, GRAIN, (p, lo, hi) -> {
            int i = lo;
            if (vector) {
                for (; i < vbound(lo, hi); i += VL) {
                    st(ld(x.bb, i).add(ld(y.bb, i)), o.bb, i);
                }
            }
            for (; i < hi; i++) {
                o.fb.put(i, x.fb.get(i) + y.fb.get(i));
            }
        });
    }

    @Override
    public void accumulate(Tensor dst, Tensor src, int n) {
        add(dst, dst, src, n);
    }

    @Override
    public void scale(Tensor t, int n, float factor) {
        checkN(n);
        CpuTensor x = of(t).need(n, "n");
        pool.forRange(n, GRAIN, (p, lo, hi) -> {
            int i = lo;
            if (vector) {
                for (; i < vbound(lo, hi); i += VL) {
                    st(ld(x.bb, i).mul(factor), x.bb, i);
                }
            }
            for (; i < hi; i++) {
                x.fb.put(i, x.fb.get(i) * factor);
            }
        });
    }

    // ---- dropout ------------------------------------------------------------------------------------------

    @Override
    public void dropoutMask(Tensor mask, int n, float p, long seed, long offset) {
        checkN(n);
        CpuTensor m = of(mask).need(n, "n");
        Check.arg(p >= 0.0f && p < 1.0f, "p", p, "dropout probability must be in [0, 1)");
        float keep = 1.0f / (1.0f - p);
        pool.forRange(n, GRAIN, (part, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                m.fb.put(i, Dropout.uniform(seed, offset + i) < p ? 0.0f : keep);
            }
        });
    }

    @Override
    public void dropoutForward(Tensor out, Tensor inp, Tensor mask, int n) {
        checkN(n);
        CpuTensor o = of(out).need(n, "n");
        CpuTensor x = of(inp).need(n, "n");
        CpuTensor m = of(mask).need(n, "n");
        pool.forRange(n, GRAIN, (p, lo, hi) -> {
            int i = lo;
            if (vector) {
                for (; i < vbound(lo, hi); i += VL) {
                    st(ld(x.bb, i).mul(ld(m.bb, i)), o.bb, i);
                }
            }
            for (; i < hi; i++) {
                o.fb.put(i, x.fb.get(i) * m.fb.get(i));
            }
        });
    }

    @Override
    public void dropoutBackward(Tensor dinp, Tensor dout, Tensor mask, int n) {
        checkN(n);
        CpuTensor dx = of(dinp).need(n, "n");
        CpuTensor dy = of(dout).need(n, "n");
        CpuTensor m = of(mask).need(n, "n");
        pool.forRange(n, GRAIN, (p, lo, hi) -> {
            int i = lo;
            if (vector) {
                for (; i < vbound(lo, hi); i += VL) {
                    st(ld(dx.bb, i).add(ld(dy.bb, i).mul(ld(m.bb, i))), dx.bb, i);
                }
            }
            for (; i < hi; i++) {
                dx.fb.put(i, dx.fb.get(i) + dy.fb.get(i) * m.fb.get(i));
            }
        });
    }

    // ---- layer skipping -----------------------------------------------------------------------------------

    @Override
    public void selectSamples(Tensor out, Tensor computed, Tensor skipped, int[] skip, int B, int T, int C) {
        Check.len(skip, "skip", B, "B");
        int rows = T * C;
        CpuTensor o = of(out).need((long) B * rows, "B*T*C");
        CpuTensor c = of(computed).need((long) B * rows, "B*T*C");
        CpuTensor s = of(skipped).need((long) B * rows, "B*T*C");
        pool.forRange(B, 1, (p, lo, hi) -> {
            for (int b = lo; b < hi; b++) {
                o.bb.put(b * rows * 4, (skip[b] != 0 ? s : c).bb, b * rows * 4, rows * 4);
            }
        });
    }

    @Override
    public void selectSamplesBackward(Tensor dcomputed, Tensor dskipped, Tensor dout, int[] skip, int B, int T, int C) {
        Check.len(skip, "skip", B, "B");
        int rows = T * C;
        CpuTensor dc = of(dcomputed).need((long) B * rows, "B*T*C");
        CpuTensor ds = of(dskipped).need((long) B * rows, "B*T*C");
        CpuTensor d = of(dout).need((long) B * rows, "B*T*C");
        pool.forRange(B, 1, (p, lo, hi) -> {
            for (int b = lo; b < hi; b++) {
                int base = b * rows;
                if (skip[b] != 0) {
                    for (int i = 0; i < rows; i++) {
                        dc.fb.put(base + i, 0.0f);
                    }
                    addInto(ds.bb, base, d.bb, base, rows);
                } else {
                    dc.bb.put(base * 4, d.bb, base * 4, rows * 4);
                }
            }
        });
    }

    // ---- quantization -------------------------------------------------------------------------------------

    @Override
    public float ternaryForward(Tensor wHat, byte[] codes, Tensor w, int n) {
        checkN(n);
        CpuTensor x = of(w).need(n, "n");
        CpuTensor o = wHat == null ? null : of(wHat).need(n, "n");
        if (codes != null) {
            Check.len(codes, "codes", n, "n");
        }
        return ternary(o, codes, x, n);
    }

    private float ternary(CpuTensor o, byte[] codes, CpuTensor x, int n) {
        // alpha exactly as Quantize.ternaryForward: one sequential double sum (the bit-exact contract; a
        // parallel sum would change its order), then the per-element thresholds in parallel.
        double sum = 0.0;
        FloatBuffer xf = x.fb;
        for (int i = 0; i < n; i++) {
            sum += Math.abs(xf.get(i));
        }
        float a = (float) (sum / n);
        final float alpha = a < 1e-6f ? 1e-6f : a;
        float thr = 0.5f * alpha;
        pool.forRange(n, GRAIN, (p, lo, hi) -> {
            int i = lo;
            if (vector && o != null && codes == null) {
                FloatVector zero = FloatVector.zero(S);
                for (; i < vbound(lo, hi); i += VL) {
                    FloatVector v = ld(x.bb, i);
                    FloatVector q = zero.blend(alpha, v.compare(VectorOperators.GT, thr))
                            .blend(-alpha, v.compare(VectorOperators.LT, -thr));
                    st(q, o.bb, i);
                }
            }
            for (; i < hi; i++) {
                float v = x.fb.get(i);
                float q = 0.0f;
                if (v > thr) {
                    q = 1.0f;
                } else if (v < -thr) {
                    q = -1.0f;
                }
                if (codes != null) {
                    codes[i] = (byte) q;
                }
                if (o != null) {
                    o.fb.put(i, alpha * q);
                }
            }
        });
        return alpha;
    }

    /** Per-token absmax quantization (Quantize.activationForward, bit for bit). */
    private void quantizeActivations(CpuTensor out, CpuTensor scale, CpuTensor inp, int N, int C, int bits) {
        float Q = (float) ((1 << (bits - 1)) - 1);
        pool.forRange(N, Math.max(1, GRAIN / C), (p, lo, hi) -> {
            ByteBuffer x = inp.bb, o = out.bb;
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
                    st(q.mul(s).div(Q), o, row + c);
                }
                for (; c < C; c++) {
                    float q = (float) Math.rint((Q * x.getFloat((row + c) << 2)) / s);
                    if (q > Q) {
                        q = Q;
                    } else if (q < -Q) {
                        q = -Q;
                    }
                    o.putFloat((row + c) << 2, (s * q) / Q);
                }
                scale.fb.put(n, s);
            }
        });
    }

    @Override
    public double squaredError(Tensor w, Tensor wHat, int n) {
        checkN(n);
        CpuTensor a = of(w).need(n, "n");
        CpuTensor b = of(wHat).need(n, "n");
        return blockSum(a, b, n);
    }

    @Override
    public void squaredErrorBackward(Tensor dw, Tensor w, Tensor wHat, int n, float scale) {
        checkN(n);
        CpuTensor d = of(dw).need(n, "n");
        CpuTensor a = of(w).need(n, "n");
        CpuTensor b = of(wHat).need(n, "n");
        pool.forRange(n, GRAIN, (p, lo, hi) -> {
            int i = lo;
            if (vector) {
                for (; i < vbound(lo, hi); i += VL) {
                    FloatVector t = ld(a.bb, i).sub(ld(b.bb, i)).mul(scale * 2.0f);
                    st(ld(d.bb, i).add(t), d.bb, i);
                }
            }
            for (; i < hi; i++) {
                d.fb.put(i, d.fb.get(i) + scale * 2.0f * (a.fb.get(i) - b.fb.get(i)));
            }
        });
    }

    /**
     * Σ (a − b)² (b null: Σ a²) in double, over fixed blocks of {@value #BLOCK} elements summed in block order:
     * the result does not depend on the thread count.
     */
    private double blockSum(CpuTensor a, CpuTensor b, int n) {
        int blocks = (n + BLOCK - 1) / BLOCK;
        double[] part = partials(blocks);
        pool.forRange(blocks, 4, (p, b0, b1) -> {
            for (int k = b0; k < b1; k++) {
                int lo = k * BLOCK, hi = Math.min(n, lo + BLOCK);
                double s = 0.0;
                int i = lo;
                if (vector) {
                    int hl = FH.length();
                    DoubleVector acc = DoubleVector.zero(DS);
                    for (; i + hl <= hi; i += hl) {
                        FloatVector f = VectorIO.load(FH, a.bb, i << 2);
                        if (b != null) {
                            f = f.sub(VectorIO.load(FH, b.bb, i << 2));
                        }
                        DoubleVector d = (DoubleVector) f.convertShape(VectorOperators.F2D, DS, 0);
                        acc = d.fma(d, acc); // the product of two floats is exact in double: fma == mul + add
                    }
                    s = Lanes.sum(acc);
                }
                for (; i < hi; i++) {
                    double d = b == null ? a.fb.get(i) : a.fb.get(i) - b.fb.get(i);
                    s += d * d;
                }
                part[k] = s;
            }
        });
        double sum = 0.0;
        for (int k = 0; k < blocks; k++) {
            sum += part[k];
        }
        return sum;
    }

    // ---- quantized projections ------------------------------------------------------------------------

    private static void checkActBits(int actBits) {
        Check.arg(actBits == 0 || (actBits >= 2 && actBits <= 8), "actBits", actBits,
                "must be 0 (no activation quantization) or in [2, 8]");
    }

    @Override
    public float bitLinearForward(Tensor out, Tensor preact, Tensor xHat, Tensor actScale, Tensor wHat, Tensor inp,
                                  Tensor weight, int N, int C, int OC, int actBits, boolean ternary, boolean relu2) {
        Check.positive("N", N, "C", C, "OC", OC);
        checkActBits(actBits);
        CpuTensor o = of(out).need((long) N * OC, "N*OC");
        CpuTensor x = of(inp).need((long) N * C, "N*C");
        CpuTensor w = of(weight).need((long) OC * C, "OC*C");
        CpuTensor pre = relu2 ? of(preact).need((long) N * OC, "N*OC (relu2 is on)") : null;
        float alpha = 1.0f;
        if (ternary) {
            CpuTensor wh = of(wHat).need((long) OC * C, "OC*C (ternary is on)");
            alpha = ternary(wh, null, w, OC * C);
            w = wh;
        }
        if (actBits != 0) {
            CpuTensor xh = of(xHat).need((long) N * C, "N*C (actBits != 0)");
            CpuTensor sc = of(actScale).need(N, "N (actBits != 0)");
            quantizeActivations(xh, sc, x, N, C, actBits);
            x = xh;
        }
        if (relu2) {
            sgemm(false, true, N, OC, C, 1.0f, x, 0, C, w, 0, C, 0.0f, pre, 0, OC);
            pool.forRange(N * OC, GRAIN, (p, lo, hi) -> relu2Range(o.bb, pre.bb, lo, hi));
        } else {
            sgemm(false, true, N, OC, C, 1.0f, x, 0, C, w, 0, C, 0.0f, o, 0, OC);
        }
        return alpha;
    }

    @Override
    public void bitLinearBackward(Tensor dinp, Tensor dweight, Tensor dpreact, Tensor dout, Tensor preact,
                                  Tensor xHat, Tensor wHat, Tensor inp, Tensor weight, int N, int C, int OC,
                                  int actBits, boolean ternary, boolean relu2) {
        Check.positive("N", N, "C", C, "OC", OC);
        checkActBits(actBits);
        CpuTensor g = of(dout).need((long) N * OC, "N*OC");
        if (relu2) {
            CpuTensor dpre = of(dpreact).need((long) N * OC, "N*OC (relu2 is on)");
            CpuTensor pre = of(preact).need((long) N * OC, "N*OC (relu2 is on)");
            CpuTensor gg = g;
            pool.forRange(N * OC, GRAIN, (p, lo, hi) -> relu2BackRange(dpre.bb, gg.bb, pre.bb, lo, hi, true));
            g = dpre;
        }
        CpuTensor x = actBits != 0 ? of(xHat) : of(inp);
        CpuTensor w = ternary ? of(wHat) : of(weight);
        if (dinp != null) {
            CpuTensor dx = of(dinp).need((long) N * C, "N*C");
            w.need((long) OC * C, "OC*C");
            sgemm(false, false, N, C, OC, 1.0f, g, 0, OC, w, 0, C, 1.0f, dx, 0, C);
        }
        if (dweight != null) {
            CpuTensor dw = of(dweight).need((long) OC * C, "OC*C");
            x.need((long) N * C, "N*C");
            sgemm(true, false, OC, C, N, 1.0f, g, 0, OC, x, 0, C, 1.0f, dw, 0, C);
        }
    }

    private static void checkP(int C, int P) {
        Check.arg((P & (P - 1)) == 0, "P", P, "must be a power of two");
        Check.arg(P >= C, "P", P, "must be >= C = " + C + " (the row is padded, never truncated)");
    }

    /** Rows [lo, hi) of (N, P): the orthonormal FWHT in place, Hadamard.forward's order of operations. */
    private void fwhtRows(ByteBuffer z, int lo, int hi, int P) {
        float scale = (float) (1.0 / Math.sqrt(P));
        for (int n = lo; n < hi; n++) {
            int row = n * P;
            for (int h = 1; h < P; h *= 2) {
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

    @Override
    public float hBitLinearForward(Tensor out, Tensor preact, Tensor zHat, Tensor actScale, Tensor wHat, Tensor z,
                                   Tensor lnOut, Tensor lnMean, Tensor lnRstd, Tensor inp, Tensor lnWeight,
                                   Tensor lnBias, Tensor weight, int N, int C, int P, int OC, float eps,
                                   int actBits, boolean ternary, boolean relu2) {
        Check.positive("N", N, "C", C, "P", P, "OC", OC);
        checkP(C, P);
        CpuTensor zz = of(z).need((long) N * P, "N*P");
        CpuTensor ln = of(lnOut).need((long) N * C, "N*C");
        of(weight).need((long) OC * P, "OC*P (W lives in the rotated basis)");
        layerNormForward(lnOut, lnMean, lnRstd, inp, lnWeight, lnBias, N, C, eps);
        pool.forRange(N, Math.max(1, GRAIN / P), (p, lo, hi) -> {
            for (int n = lo; n < hi; n++) {
                zz.bb.put(n * P * 4, ln.bb, n * C * 4, C * 4);
                for (int c = C; c < P; c++) {
                    zz.fb.put(n * P + c, 0.0f);
                }
            }
            fwhtRows(zz.bb, lo, hi, P);
        });
        return bitLinearForward(out, preact, zHat, actScale, wHat, z, weight, N, P, OC, actBits, ternary, relu2);
    }

    @Override
    public void hBitLinearBackward(Tensor dinp, Tensor dlnWeight, Tensor dlnBias, Tensor dweight, Tensor dpreact,
                                   Tensor dz, Tensor dlnOut, Tensor dout, Tensor preact, Tensor zHat, Tensor wHat,
                                   Tensor z, Tensor lnMean, Tensor lnRstd, Tensor inp, Tensor lnWeight,
                                   Tensor weight, int N, int C, int P, int OC, int actBits, boolean ternary,
                                   boolean relu2) {
        Check.positive("N", N, "C", C, "P", P, "OC", OC);
        checkP(C, P);
        CpuTensor dzz = of(dz).need((long) N * P, "N*P");
        CpuTensor dln = of(dlnOut).need((long) N * C, "N*C");
        // dz is overwritten below (sgemm with beta 0 would do, but bitLinearBackward accumulates)
        zeroRange(dzz, (long) N * P);
        bitLinearBackward(dz, dweight, dpreact, dout, preact, zHat, wHat, z, weight, N, P, OC, actBits, ternary,
                relu2);
        pool.forRange(N, Math.max(1, GRAIN / P), (p, lo, hi) -> {
            fwhtRows(dzz.bb, lo, hi, P);
            for (int n = lo; n < hi; n++) {
                dln.bb.put(n * C * 4, dzz.bb, n * P * 4, C * 4); // (0 + dz): dlnOut is scratch
            }
        });
        layerNormBackward(dinp, dlnWeight, dlnBias, dlnOut, inp, lnWeight, lnMean, lnRstd, N, C);
    }

    private void zeroRange(CpuTensor t, long n) {
        org.bytedeco.javacpp.Pointer.memset(t.ptr, 0, n * 4);
    }

    // ---- attention ------------------------------------------------------------------------------------

    private static void checkRope(int B, int T, int NH, int HS, int pos0) {
        Check.positive("B", B, "T", T, "NH", NH, "HS", HS);
        Check.arg(HS % 2 == 0, "HS", HS, "must be even (dimensions are rotated in pairs)");
        Check.arg(pos0 >= 0, "pos0", pos0, "must be non-negative");
    }

    @Override
    public void ropeForward(Tensor out, Tensor inp, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0) {
        rope(out, inp, cos, sin, B, T, NH, HS, pos0, false);
    }

    @Override
    public void ropeBackward(Tensor dinp, Tensor dout, Tensor cos, Tensor sin, int B, int T, int NH, int HS, int pos0) {
        rope(dinp, dout, cos, sin, B, T, NH, HS, pos0, true);
    }

    private void rope(Tensor outT, Tensor inT, Tensor cosT, Tensor sinT, int B, int T, int NH, int HS, int pos0,
                      boolean backward) {
        checkRope(B, T, NH, HS, pos0);
        long n = (long) B * T * NH * HS;
        CpuTensor o = of(outT).need(n, "B*T*NH*HS");
        CpuTensor x = of(inT).need(n, "B*T*NH*HS");
        int half = HS / 2;
        CpuTensor cs = of(cosT).need((long) (pos0 + T) * half, "(pos0+T)*HS/2");
        CpuTensor sn = of(sinT).need((long) (pos0 + T) * half, "(pos0+T)*HS/2");
        pool.forRange(B * T, Math.max(1, GRAIN / (NH * HS)), (p, lo, hi) -> {
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

    private static void checkAttention(int B, int T, int NH, int NKV, int HS) {
        Check.positive("B", B, "T", T, "NH", NH, "NKV", NKV, "HS", HS);
        Check.arg(NH % NKV == 0, "NKV", NKV, "must divide NH = " + NH);
    }

    /**
     * Two (T, T) work areas for attention, off-heap so that sgemm reads and writes them in place; grown when T
     * grows (planned once per shape, like every other buffer), never shrunk.
     */
    private CpuTensor attnA, attnB;

    private void planAttention(int T) {
        if (attnA == null || attnA.size() < (long) T * T) {
            attnA = new CpuTensor("attention.work_a", T * T);
            attnB = new CpuTensor("attention.work_b", T * T);
        }
    }

    /**
     * Causal attention as two sgemm per (sample, head): scores = scale·Q·Kᵀ over the whole (T, T) square (the
     * masked half costs flops but sgemm runs ~10× faster than a row loop), a causal softmax per row in
     * parallel, then out = (P∘dropMask)·V. Heads run one after the other; OpenBLAS threads each product.
     */
    @Override
    public void attentionForward(Tensor out, Tensor probs, Tensor q, Tensor k, Tensor v, Tensor dropMask,
                                 int B, int T, int NH, int NKV, int HS) {
        checkAttention(B, T, NH, NKV, HS);
        CpuTensor o = of(out).need((long) B * T * NH * HS, "B*T*NH*HS");
        CpuTensor pr = of(probs).need((long) B * NH * T * T, "B*NH*T*T");
        CpuTensor qq = of(q).need((long) B * T * NH * HS, "B*T*NH*HS");
        CpuTensor kk = of(k).need((long) B * T * NKV * HS, "B*T*NKV*HS");
        CpuTensor vv = of(v).need((long) B * T * NKV * HS, "B*T*NKV*HS");
        CpuTensor dm = dropMask == null ? null : of(dropMask).need((long) B * NH * T * T, "B*NH*T*T");
        planAttention(T);
        CpuTensor w = attnA;
        int group = NH / NKV;
        float scale = (float) (1.0 / Math.sqrt(HS));
        for (int bh = 0; bh < B * NH; bh++) {
            int b = bh / NH, h = bh % NH, kvh = h / group;
            long qOff = ((long) b * T * NH + h) * HS, kvOff = ((long) b * T * NKV + kvh) * HS, pOff = (long) bh * T * T;
            sgemm(false, true, T, T, HS, scale, qq, qOff, NH * HS, kk, kvOff, NKV * HS, 0.0f, pr, pOff, T);
            int prow0 = (int) pOff;
            pool.forRange(T, 64, (part, lo, hi) -> {
                ByteBuffer P = pr.bb;
                for (int t = lo; t < hi; t++) {
                    int prow = prow0 + t * T;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int s = 0; s <= t; s++) {
                        max = Math.max(max, P.getFloat((prow + s) << 2));
                    }
                    float sum = 0.0f;
                    int s = 0;
                    if (vector) {
                        FloatVector acc = FloatVector.zero(S);
                        for (; s < S.loopBound(t + 1); s += VL) {
                            FloatVector e = VectorMath.exp(ld(P, prow + s).sub(max));
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
                        float p = P.getFloat((prow + s) << 2) * inv;
                        P.putFloat((prow + s) << 2, p);
                        if (dm != null) {
                            w.fb.put(t * T + s, p * dm.fb.get(prow + s));
                        }
                    }
                    for (s = t + 1; s < T; s++) {
                        P.putFloat((prow + s) << 2, 0.0f);
                        if (dm != null) {
                            w.fb.put(t * T + s, 0.0f);
                        }
                    }
                }
            });
            // W = P∘mask: P itself without dropout, else the masked copy in w
            sgemm(false, false, T, HS, T, 1.0f, dm == null ? pr : w, dm == null ? pOff : 0, T, vv, kvOff, NKV * HS,
                    0.0f, o, qOff, NH * HS);
        }
    }

    /**
     * The backward of {@link #attentionForward} in the same shape, per (sample, head), the heads of one KV head
     * in order (dk and dv sum over them in a fixed order): dW = dO·Vᵀ, dV += Wᵀ·dO with W = P∘mask,
     * dS = P∘(dW∘mask − rowsum)·scale on the causal half (zero above it), dQ += dS·K, dK += dSᵀ·Q.
     */
    @Override
    public void attentionBackward(Tensor dq, Tensor dk, Tensor dv, Tensor scratch, Tensor dout, Tensor q, Tensor k,
                                  Tensor v, Tensor probs, Tensor dropMask, int B, int T, int NH, int NKV, int HS) {
        checkAttention(B, T, NH, NKV, HS);
        CpuTensor dQ = of(dq).need((long) B * T * NH * HS, "B*T*NH*HS");
        CpuTensor dK = of(dk).need((long) B * T * NKV * HS, "B*T*NKV*HS");
        CpuTensor dV = of(dv).need((long) B * T * NKV * HS, "B*T*NKV*HS");
        CpuTensor dO = of(dout).need((long) B * T * NH * HS, "B*T*NH*HS");
        CpuTensor qq = of(q).need((long) B * T * NH * HS, "B*T*NH*HS");
        CpuTensor kk = of(k).need((long) B * T * NKV * HS, "B*T*NKV*HS");
        CpuTensor vv = of(v).need((long) B * T * NKV * HS, "B*T*NKV*HS");
        CpuTensor pr = of(probs).need((long) B * NH * T * T, "B*NH*T*T");
        CpuTensor dm = dropMask == null ? null : of(dropMask).need((long) B * NH * T * T, "B*NH*T*T");
        planAttention(T);
        CpuTensor w = attnA, ds = attnB;
        int group = NH / NKV;
        float scale = (float) (1.0 / Math.sqrt(HS));
        for (int bk = 0; bk < B * NKV; bk++) {
            int b = bk / NKV, kvh = bk % NKV;
            long kvOff = ((long) b * T * NKV + kvh) * HS;
            for (int h = kvh * group; h < (kvh + 1) * group; h++) {
                long qOff = ((long) b * T * NH + h) * HS, pOff = ((long) b * NH + h) * T * T;
                int prow0 = (int) pOff;
                // ds <- dW = dO·Vᵀ (T, T)
                sgemm(false, true, T, T, HS, 1.0f, dO, qOff, NH * HS, vv, kvOff, NKV * HS, 0.0f, ds, 0, T);
                pool.forRange(T, 64, (part, lo, hi) -> {
                    ByteBuffer P = pr.bb;
                    for (int t = lo; t < hi; t++) {
                        int prow = prow0 + t * T, row = t * T;
                        float pdp = 0.0f;
                        for (int s = 0; s <= t; s++) {
                            float m = dm == null ? 1.0f : dm.fb.get(prow + s);
                            float dp = ds.fb.get(row + s) * m;
                            ds.fb.put(row + s, dp);
                            pdp += P.getFloat((prow + s) << 2) * dp;
                            if (dm != null) {
                                w.fb.put(row + s, P.getFloat((prow + s) << 2) * m);
                            }
                        }
                        for (int s = 0; s <= t; s++) {
                            ds.fb.put(row + s, P.getFloat((prow + s) << 2) * (ds.fb.get(row + s) - pdp) * scale);
                        }
                        for (int s = t + 1; s < T; s++) {
                            ds.fb.put(row + s, 0.0f);
                            if (dm != null) {
                                w.fb.put(row + s, 0.0f);
                            }
                        }
                    }
                });
                sgemm(true, false, T, HS, T, 1.0f, dm == null ? pr : w, dm == null ? pOff : 0, T, dO, qOff, NH * HS,
                        1.0f, dV, kvOff, NKV * HS);
                sgemm(false, false, T, HS, T, 1.0f, ds, 0, T, kk, kvOff, NKV * HS, 1.0f, dQ, qOff, NH * HS);
                sgemm(true, false, T, HS, T, 1.0f, ds, 0, T, qq, qOff, NH * HS, 1.0f, dK, kvOff, NKV * HS);
            }
        }
    }

    // ---- routing ------------------------------------------------------------------------------------------

    @Override
    public void routerForward(Tensor p, Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h,
                              Tensor lnWeight, Tensor lnBias, Tensor w1, Tensor b1, Tensor w2, Tensor b2,
                              int N, int C, int H, float eps) {
        Check.positive("N", N, "C", C, "H", H);
        CpuTensor pp = of(p).need(N, "N");
        CpuTensor hid = of(hidden).need((long) N * H, "N*H");
        layerNormForward(ln, lnMean, lnRstd, h, lnWeight, lnBias, N, C, eps);
        matmulForward(hidden, ln, w1, b1, N, C, H);
        pool.forRange(N * H, GRAIN, (part, lo, hi) -> {
            int i = lo;
            if (vector) {
                for (; i < vbound(lo, hi); i += VL) {
                    st(ld(hid.bb, i).max(0.0f), hid.bb, i);
                }
            }
            for (; i < hi; i++) {
                float x = hid.fb.get(i);
                hid.fb.put(i, x > 0.0f ? x : 0.0f);
            }
        });
        matmulForward(p, hidden, w2, b2, N, H, 1);
        for (int n = 0; n < N; n++) {
            pp.fb.put(n, (float) (1.0 / (1.0 + Math.exp(-pp.fb.get(n)))));
        }
    }

    @Override
    public void routerBackward(Tensor dh, Tensor dlnWeight, Tensor dlnBias, Tensor dw1, Tensor db1, Tensor dw2,
                               Tensor db2, Tensor dlogit, Tensor dhidden, Tensor dpre, Tensor dln, Tensor dp, Tensor p,
                               Tensor ln, Tensor lnMean, Tensor lnRstd, Tensor hidden, Tensor h, Tensor lnWeight,
                               Tensor w1, Tensor w2, int N, int C, int H) {
        Check.positive("N", N, "C", C, "H", H);
        CpuTensor dl = of(dlogit).need(N, "N");
        CpuTensor dhid = of(dhidden).need((long) N * H, "N*H");
        CpuTensor dpr = of(dpre).need((long) N * H, "N*H");
        CpuTensor dlnT = of(dln).need((long) N * C, "N*C");
        CpuTensor dP = of(dp).need(N, "N");
        CpuTensor pp = of(p).need(N, "N");
        CpuTensor hid = of(hidden).need((long) N * H, "N*H");
        zeroRange(dhid, (long) N * H);
        zeroRange(dlnT, (long) N * C);
        for (int n = 0; n < N; n++) {
            float o = pp.fb.get(n);
            dl.fb.put(n, 0.0f + dP.fb.get(n) * o * (1.0f - o));
        }
        matmulBackward(dhidden, dw2, db2, dlogit, hidden, w2, N, H, 1);
        pool.forRange(N * H, GRAIN, (part, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                dpr.fb.put(i, hid.fb.get(i) > 0.0f ? 0.0f + dhid.fb.get(i) : 0.0f);
            }
        });
        matmulBackward(dln, dw1, db1, dpre, ln, w1, N, C, H);
        layerNormBackward(dh, dlnWeight, dlnBias, dln, h, lnWeight, lnMean, lnRstd, N, C);
    }

    @Override
    public double routingLossForward(Tensor lbar, Tensor pExit, int L, int N, float target, boolean batchMean) {
        Check.positive("L", L, "N", N);
        FloatBuffer lb = of(lbar).need(N, "N").fb;
        FloatBuffer pe = of(pExit).need((long) L * N, "L*N").fb;
        double sumSq = 0.0, sumLbar = 0.0;
        for (int n = 0; n < N; n++) {
            float survive = 1.0f, e = 0.0f;
            for (int l = 0; l < L; l++) {
                float p = pe.get(l * N + n);
                e += l * (p * survive);
                survive = survive * (1.0f - p);
            }
            lb.put(n, e);
            double d = (double) e - target;
            sumSq += d * d;
            sumLbar += e;
        }
        if (batchMean) {
            double d = sumLbar / N - target;
            return d * d;
        }
        return sumSq / N;
    }

    @Override
    public void routingLossBackward(Tensor dpExit, Tensor pExit, Tensor lbar, int L, int N, float target,
                                    boolean batchMean, float gradScale) {
        Check.positive("L", L, "N", N);
        FloatBuffer dpe = of(dpExit).need((long) L * N, "L*N").fb;
        FloatBuffer pe = of(pExit).need((long) L * N, "L*N").fb;
        FloatBuffer lb = of(lbar).need(N, "N").fb;
        float meanLbar = 0.0f;
        if (batchMean) {
            double s = 0.0;
            for (int n = 0; n < N; n++) {
                s += lb.get(n);
            }
            meanLbar = (float) (s / N);
        }
        final float mean = meanLbar;
        pool.forRange(N, 256, (part, lo, hi) -> {
            for (int n = lo; n < hi; n++) {
                float residual = batchMean ? mean - target : lb.get(n) - target;
                float dlbar = gradScale * 2.0f * residual / N;
                float rest = 0.0f;
                for (int l = L - 1; l >= 0; l--) {
                    float survive = 1.0f;
                    for (int i = 0; i < l; i++) {
                        survive = survive * (1.0f - pe.get(i * N + n));
                    }
                    dpe.put(l * N + n, dpe.get(l * N + n) + dlbar * survive * (l - rest));
                    float p = pe.get(l * N + n);
                    rest = l * p + (1.0f - p) * rest;
                }
            }
        });
    }

    // ---- the LM head -------------------------------------------------------------------------------------

    @Override
    public double headLoss(Tensor x, Tensor head, int[] targets, int N, int C, int V, float gradScale, Tensor dx,
                           Tensor dhead, Tensor logits, Tensor dlogits, int chunkRows) {
        Check.positive("N", N, "C", C, "V", V);
        Check.len(targets, "targets", N, "N");
        Check.arg(chunkRows > 0, "chunkRows", chunkRows, "must be positive");
        for (int r = 0; r < N; r++) {
            if (targets[r] < -1 || targets[r] >= V) {
                Check.arg(false, "targets[" + r + "]", targets[r], "must be -1 (ignored) or in [0, V) with V = " + V);
            }
        }
        int R0 = Math.min(HEAD_CHUNK, Math.min(chunkRows, N));
        CpuTensor xs = of(x).need((long) N * C, "N*C");
        CpuTensor w = of(head).need((long) V * C, "V*C");
        CpuTensor lg = of(logits).need((long) Math.min(chunkRows, N) * V, "min(chunkRows, N)*V");
        boolean grad = dx != null;
        CpuTensor dX = grad ? of(dx).need((long) N * C, "N*C") : null;
        CpuTensor dW = grad && dhead != null ? of(dhead).need((long) V * C, "V*C") : null;
        if (rowLoss.length < R0) {
            rowLoss = new double[R0];
        }
        double[] rl = rowLoss;
        double loss = 0.0;
        for (int r0 = 0; r0 < N; r0 += R0) {
            int R = Math.min(R0, N - r0);
            int base = r0;
            sgemm(false, true, R, V, C, 1.0f, xs, (long) r0 * C, C, w, 0, C, 0.0f, lg, 0, V);
            pool.forRange(R, 1, (part, lo, hi) -> {
                for (int r = lo; r < hi; r++) {
                    rl[r] = crossEntropyRow(lg.bb, r * V, V, targets[base + r], grad, gradScale);
                }
            });
            for (int r = 0; r < R; r++) {
                loss += rl[r];
            }
            if (grad) {
                sgemm(false, false, R, C, V, 1.0f, lg, 0, V, w, 0, C, 1.0f, dX, (long) r0 * C, C);
                if (dW != null) {
                    sgemm(true, false, V, C, R, 1.0f, lg, 0, V, xs, (long) r0 * C, C, 1.0f, dW, 0, C);
                }
            }
        }
        return loss;
    }

    /**
     * One row of CrossEntropy.forwardBackward, in place: returns logsumexp − x[target] (0 for an ignored row)
     * and, when grad, overwrites the row with (softmax − onehot)·gradScale (0 for an ignored row).
     */
    private double crossEntropyRow(ByteBuffer row, int off, int V, int target, boolean grad, float gradScale) {
        if (target < 0) {
            if (grad) {
                for (int i = 0; i < V; i++) {
                    row.putFloat((off + i) << 2, 0.0f);
                }
            }
            return 0.0;
        }
        float xt = row.getFloat((off + target) << 2);
        int vb = vector ? S.loopBound(V) : 0;
        float max = Float.NEGATIVE_INFINITY;
        int i = 0;
        if (vb > 0) {
            FloatVector mx = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            for (; i < vb; i += VL) {
                mx = mx.max(ld(row, off + i));
            }
            max = mx.reduceLanes(VectorOperators.MAX);
        }
        for (; i < V; i++) {
            float v = row.getFloat((off + i) << 2);
            if (v > max) {
                max = v;
            }
        }
        double sum = 0.0;
        if (vb > 0) {
            // exp in float lanes; float partial sums over blocks of 64 vectors, added into a double
            i = 0;
            while (i < vb) {
                int end = Math.min(vb, i + 64 * VL);
                FloatVector acc = FloatVector.zero(S);
                for (; i < end; i += VL) {
                    FloatVector e = VectorMath.exp(ld(row, off + i).sub(max));
                    if (grad) {
                        st(e, row, off + i);
                    }
                    acc = acc.add(e);
                }
                sum += Lanes.sum(acc);
            }
            for (; i < V; i++) {
                float e = (float) Math.exp(row.getFloat((off + i) << 2) - max);
                if (grad) {
                    row.putFloat((off + i) << 2, e);
                }
                sum += e;
            }
            if (grad) {
                float inv = (float) (1.0 / sum);
                float pt = row.getFloat((off + target) << 2) * inv;
                i = 0;
                for (; i < vb; i += VL) {
                    st(ld(row, off + i).mul(inv).mul(gradScale), row, off + i);
                }
                for (; i < V; i++) {
                    row.putFloat((off + i) << 2, row.getFloat((off + i) << 2) * inv * gradScale);
                }
                row.putFloat((off + target) << 2, (pt - 1.0f) * gradScale);
            }
        } else {
            // scalar: CrossEntropy.forwardBackward's operations (double exp and sum)
            for (i = 0; i < V; i++) {
                sum += Math.exp(row.getFloat((off + i) << 2) - max);
            }
            if (grad) {
                for (i = 0; i < V; i++) {
                    float p = (float) (Math.exp(row.getFloat((off + i) << 2) - max) / sum);
                    float onehot = i == target ? 1.0f : 0.0f;
                    row.putFloat((off + i) << 2, (p - onehot) * gradScale);
                }
            }
        }
        return (max - (double) xt) + Math.log(sum);
    }

    // ---- optimizer ---------------------------------------------------------------------------------------

    @Override
    public double sumSquares(Tensor g, int n) {
        checkN(n);
        return blockSum(of(g).need(n, "n"), null, n);
    }

    @Override
    public void adamW(Tensor param, Tensor grad, Tensor m, Tensor v, int n, float lr, float beta1, float beta2,
                      float eps, float weightDecay, int step) {
        checkN(n);
        CpuTensor P = of(param).need(n, "n");
        CpuTensor G = of(grad).need(n, "n");
        CpuTensor M = of(m).need(n, "n");
        CpuTensor Vv = of(v).need(n, "n");
        Check.arg(step >= 1, "step", step, "must be >= 1 (the first update is step 1)");
        Check.arg(beta1 >= 0.0f && beta1 < 1.0f, "beta1", beta1, "must be in [0, 1)");
        Check.arg(beta2 >= 0.0f && beta2 < 1.0f, "beta2", beta2, "must be in [0, 1)");
        // the scalars exactly as AdamW.update computes them
        double bc1 = 1.0 - Math.pow(beta1, step);
        double bc2 = 1.0 - Math.pow(beta2, step);
        float negStepSize = (float) (-(lr / bc1));
        float bc2Sqrt = (float) Math.sqrt(bc2);
        float decay = (float) (1.0 - (double) lr * weightDecay);
        float w1 = (float) (1.0 - beta1);
        float oneMinusBeta2 = (float) (1.0 - beta2);
        float w1c = 1.0f - w1;
        boolean lerpLow = w1 < 0.5f;
        pool.forRange(n, GRAIN, (part, lo, hi) -> {
            int i = lo;
            if (vector) {
                for (; i < vbound(lo, hi); i += VL) {
                    FloatVector g = ld(G.bb, i);
                    FloatVector p = ld(P.bb, i).mul(decay);
                    FloatVector mm = ld(M.bb, i);
                    mm = lerpLow ? mm.add(g.sub(mm).mul(w1)) : g.sub(g.sub(mm).mul(w1c));
                    FloatVector vv = ld(Vv.bb, i).mul(beta2).add(g.mul(oneMinusBeta2).mul(g));
                    FloatVector denom = vv.sqrt().div(bc2Sqrt).add(eps);
                    p = p.add(mm.mul(negStepSize).div(denom));
                    st(mm, M.bb, i);
                    st(vv, Vv.bb, i);
                    st(p, P.bb, i);
                }
            }
            for (; i < hi; i++) {
                float g = G.fb.get(i);
                float p = P.fb.get(i) * decay;
                float mm = M.fb.get(i);
                mm = lerpLow ? mm + w1 * (g - mm) : g - (g - mm) * w1c;
                float vv = Vv.fb.get(i) * beta2 + oneMinusBeta2 * g * g;
                float denom = (float) Math.sqrt(vv) / bc2Sqrt + eps;
                p = p + negStepSize * mm / denom;
                M.fb.put(i, mm);
                Vv.fb.put(i, vv);
                P.fb.put(i, p);
            }
        });
    }
}
