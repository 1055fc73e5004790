package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;

import bitskip.engine.Gemm;
import bitskip.engine.Mat;

/**
 * The matrix products: every {@link Gemm} is cut into blocks of C's rows (or of its columns, when it has more
 * columns than rows) that the pool's threads claim, each block one single-threaded OpenBLAS {@code sgemm} on
 * the tensors' off-heap memory at element offsets, no copies. Why not OpenBLAS's own threads: it cuts a
 * product into one fixed part per thread and waits for the last, so when another process holds a core every
 * product waits for the descheduled part (tiny bitskip training beside a 2-thread CPU-bound process ran at 24%
 * of its speed alone); claimed blocks let the running thread take the other's share. Each element of C is the
 * same dot product whichever block or thread computes it, and the blocks are a pure function of the shape
 * and the thread count, so the bits do not depend on the schedule. A bias is first copied into C's rows, then
 * the product added (beta 1): bias + Σ rather than the reference's Σ starting from the bias, within the GEMM
 * tolerance. A product with a small C beside a long K (the LM head's dX) is cut along K instead ({@link #kParts}).
 */
final class CpuLinear {
    /** Blocks are whole multiples of this many rows (columns), so OpenBLAS's microkernel tiles stay whole. */
    private static final int TILE = 16;
    /** A block holds at least this many multiply-adds, so that a call's overhead stays small beside its work. */
    private static final long MIN_BLOCK_MACS = 1L << 18;
    /**
     * A block holds at least this many rows (columns): every block packs the whole other operand (other × K), so
     * packing costs 1/rows of a block's multiply-adds. The LM head's dX product (128 × 256 × 50,257) was cut into
     * 8 blocks of 32 columns, each packing the 25 MB of the chunk's logit gradient: as much time as its
     * arithmetic (the head passes ran at ~93 GFLOP/s against ~176 with OpenBLAS's own threads).
     */
    private static final int MIN_BLOCK = 128;
    /**
     * A product whose C is small beside its K is cut along K instead, into parts of about this many (see
     * {@link #kParts}); each part's product goes into its own scratch C, and the parts are added in order.
     */
    private static final int K_PART = 4096;
    /** Only a C of at most this many elements is cut along K (the scratch holds one C per part). */
    private static final long K_SPLIT_MAX_C = 1L << 20;

    static {
        Blas.setThreads(1); // process-wide: every product runs on the pool's threads instead
    }

    private final CpuContext cx;
    private final CpuMemory memory;
    /** The K-split products' partial Cs, one after another (grows, never shrinks). */
    private CpuTensor parts;
    /** One per pool thread: a Blas's pointer views are single-threaded. */
    private final Blas[] blas;
    /** Non-null in precision bf16: the products run on bf16 copies of their operands (f32 accumulation and C). */
    private CpuBf16 bf16;

    CpuLinear(CpuContext cx, CpuMemory memory) {
        this.cx = cx;
        this.memory = memory;
        blas = new Blas[cx.threads];
        for (int w = 0; w < blas.length; w++) {
            blas[w] = new Blas();
        }
    }

    /** Switches the products to bf16 operands (non-null) or back to float32 (null). */
    void useBf16(CpuBf16 bf16) {
        this.bf16 = bf16;
    }

    void gemm(Gemm g) {
        Mat a = g.a(), b = g.b(), c = g.c();
        CpuTensor A = of(a.tensor()), B = of(b.tensor()), C = of(c.tensor());
        float beta = g.beta();
        int M = g.M(), N = g.N(), K = g.K(), lda = a.ld(), ldb = b.ld(), ldc = c.ld();
        boolean tA = a.transposed(), tB = b.transposed();
        if (g.bias() != null) {
            CpuTensor bias = of(g.bias());
            int c0 = c.offset();
            cx.pool.forRange(M, Math.max(1, Vec.GRAIN / N), (w, lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    C.bb.put((c0 + i * ldc) << 2, bias.bb, 0, N << 2);
                }
            });
            beta = 1.0f;
        }
        if (M <= 0 || N <= 0) {
            return;
        }
        float alpha = g.alpha(), bt = beta;
        // In bf16 the operands are their bf16 copies (each with its own offset and leading dimension), C is C
        CpuBf16 half = bf16;
        CpuBf16.Operand A16 = half == null ? null : half.operand(a, M, K, true), B16 = half == null ? null : half.operand(b, K, N, false);
        long aOff = A16 == null ? a.offset() : A16.offset(), bOff = B16 == null ? b.offset() : B16.offset(), cOff = c.offset();
        int la = A16 == null ? lda : A16.ld(), lb = B16 == null ? ldb : B16.ld();
        int kParts = kParts(M, N, K);
        if (kParts > 1) {
            gemmSplitK(half, A16, B16, M, N, K, kParts, tA, tB, alpha, A, aOff, la, B, bOff, lb, bt, C, cOff, ldc);
            return;
        }
        boolean byRows = M >= N;
        int n = byRows ? M : N, other = byRows ? N : M;
        int tiles = (n + TILE - 1) / TILE;
        int grain = (int) Math.max(MIN_BLOCK / TILE, Math.min(tiles, MIN_BLOCK_MACS / ((long) TILE * other * Math.max(1, K))));
        cx.pool.forRange(tiles, grain, (w, lo, hi) -> {
            int i0 = lo * TILE, rows = Math.min(n, hi * TILE) - i0;
            // by rows: rows i0.. of C are rows of A' (columns of A when transposed); else columns i0.. of C are
            // columns of B' (rows of B when transposed)
            int m = byRows ? rows : M, nc = byRows ? N : rows;
            long ao = aOff + (byRows ? (tA ? i0 : (long) i0 * la) : 0), bo = bOff + (byRows ? 0 : (tB ? (long) i0 * lb : i0));
            long co = cOff + (byRows ? (long) i0 * ldc : i0);
            if (half == null) {
                blas[w].sgemm(tA, tB, m, nc, K, alpha, A, ao, la, B, bo, lb, bt, C, co, ldc);
            } else {
                half.thread(w).matmul(new Dnnl.Key(m, nc, K, tA, la, tB, lb, ldc, alpha, bt), A16.buffer().base, ao,
                        B16.buffer().base, bo, C, co);
            }
        });
    }

    /**
     * Parts along K for a product whose blocks of C would each pack a large operand: the head's dX (R × C from
     * the chunk's R × V logit gradient times the V × C weight) was cut into blocks of C's rows, each packing the
     * whole 51 MB weight again (single-threaded OpenBLAS, 2 threads, R = 512, small: 260 GFLOP/s against 300 for
     * OpenBLAS's own threads, which pack once). Cut along K, each part packs only its own rows of it. The parts
     * are a function of K alone, so the bits depend neither on the schedule nor on the thread count.
     */
    static int kParts(int M, int N, int K) {
        if (K < 2 * K_PART || (long) M * N > K_SPLIT_MAX_C || Math.max(M, N) > K / 16) {
            return 1;
        }
        return (K + K_PART - 1) / K_PART;
    }

    /** C = beta·C + Σ over kParts parts along K of alpha·A'·B', each part into scratch, the parts added in order. */
    private void gemmSplitK(CpuBf16 half, CpuBf16.Operand A16, CpuBf16.Operand B16, int M, int N, int K, int kParts,
                            boolean tA, boolean tB, float alpha, CpuTensor A, long aOff, int la, CpuTensor B, long bOff,
                            int lb, float beta, CpuTensor C, long cOff, int ldc) {
        int part = ((K + kParts - 1) / kParts + 15) / 16 * 16, MN = M * N;
        int n = (K + part - 1) / part;
        CpuTensor P = parts = memory.grown(parts, "scratch.gemm.kparts", (long) n * MN);
        cx.pool.forRange(n, 1, (w, lo, hi) -> {
            for (int p = lo; p < hi; p++) {
                int k0 = p * part, kn = Math.min(K, k0 + part) - k0;
                long ao = aOff + (tA ? (long) k0 * la : k0), bo = bOff + (tB ? k0 : (long) k0 * lb);
                if (half == null && Blas.ONEDNN_LONG_K) {
                    blas[w].sgemmOneDnn(tA, tB, M, N, kn, alpha, A, ao, la, B, bo, lb, 0.0f, P, (long) p * MN, N);
                } else if (half == null) {
                    blas[w].sgemm(tA, tB, M, N, kn, alpha, A, ao, la, B, bo, lb, 0.0f, P, (long) p * MN, N);
                } else {
                    half.thread(w).matmul(new Dnnl.Key(M, N, kn, tA, la, tB, lb, N, alpha, 0.0f), A16.buffer().base, ao,
                            B16.buffer().base, bo, P, (long) p * MN);
                }
            }
        });
        cx.pool.forRange(M, Math.max(1, Vec.GRAIN / N), (w, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                addParts(C, (int) (cOff + (long) i * ldc), beta, P, i * N, MN, n, N);
            }
        });
    }

    /** c[j] = beta·c[j] + p0[j] + p1[j] + … (in that order) for j < N, part q at pOff + q·MN (beta 0: c not read). */
    private void addParts(CpuTensor C, int c0, float beta, CpuTensor P, int p0, int MN, int n, int N) {
        int j = 0;
        if (cx.vector) {
            for (int vb = Vec.S.loopBound(N); j < vb; j += Vec.VL) {
                jdk.incubator.vector.FloatVector s = beta == 0.0f ? Vec.ld(P.bb, p0 + j)
                        : Vec.ld(C.bb, c0 + j).mul(beta).add(Vec.ld(P.bb, p0 + j));
                for (int q = 1; q < n; q++) {
                    s = s.add(Vec.ld(P.bb, p0 + q * MN + j));
                }
                Vec.st(s, C.bb, c0 + j);
            }
        }
        for (; j < N; j++) {
            float s = beta == 0.0f ? P.fb.get(p0 + j) : C.fb.get(c0 + j) * beta + P.fb.get(p0 + j);
            for (int q = 1; q < n; q++) {
                s += P.fb.get(p0 + q * MN + j);
            }
            C.fb.put(c0 + j, s);
        }
    }

    /**
     * One float32 product on pool thread w alone (the caller splits independent products over the threads): the
     * same sgemm as a block of {@link #gemm}, so each element is the same dot product.
     */
    void sgemmOn(int w, boolean tA, boolean tB, int M, int N, int K, float alpha, CpuTensor A, long aOff, int lda, CpuTensor B,
                 long bOff, int ldb, float beta, CpuTensor C, long cOff, int ldc) {
        blas[w].sgemm(tA, tB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
    }

    /** True while the products run on bf16 operands (then they go through {@link #gemm} only). */
    boolean bf16() {
        return bf16 != null;
    }
}
