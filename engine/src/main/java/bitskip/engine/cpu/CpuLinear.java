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
 * tolerance.
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

    static {
        Blas.setThreads(1); // process-wide: every product runs on the pool's threads instead
    }

    private final CpuContext cx;
    /** One per pool thread: a Blas's pointer views are single-threaded. */
    private final Blas[] blas;
    /** Non-null in precision bf16: the products run on bf16 copies of their operands (f32 accumulation and C). */
    private CpuBf16 bf16;

    CpuLinear(CpuContext cx) {
        this.cx = cx;
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
        long aOff = a.offset(), bOff = b.offset(), cOff = c.offset();
        boolean byRows = M >= N;
        int n = byRows ? M : N, other = byRows ? N : M;
        int tiles = (n + TILE - 1) / TILE;
        int grain = (int) Math.max(MIN_BLOCK / TILE, Math.min(tiles, MIN_BLOCK_MACS / ((long) TILE * other * Math.max(1, K))));
        if (bf16 != null) {
            bf16Blocks(g, byRows, n, tiles, grain, bt, C);
            return;
        }
        cx.pool.forRange(tiles, grain, (w, lo, hi) -> {
            int i0 = lo * TILE, rows = Math.min(n, hi * TILE) - i0;
            if (byRows) { // rows i0.. of C: rows of A' (columns of A when transposed)
                blas[w].sgemm(tA, tB, rows, N, K, alpha, A, aOff + (tA ? i0 : (long) i0 * lda), lda, B, bOff, ldb,
                        bt, C, cOff + (long) i0 * ldc, ldc);
            } else { // columns i0.. of C: columns of B' (rows of B when transposed)
                blas[w].sgemm(tA, tB, M, rows, K, alpha, A, aOff, lda, B, bOff + (tB ? (long) i0 * ldb : i0), ldb,
                        bt, C, cOff + i0, ldc);
            }
        });
    }

    /** The same blocks as the float32 path, each one oneDNN bf16 product on the bf16 copies of A and B. */
    private void bf16Blocks(Gemm g, boolean byRows, int n, int tiles, int grain, float beta, CpuTensor C) {
        Mat a = g.a(), b = g.b(), c = g.c();
        int M = g.M(), N = g.N(), K = g.K(), ldc = c.ld();
        boolean tA = a.transposed(), tB = b.transposed();
        CpuBf16.Operand A = bf16.operand(a, M, K, true), B = bf16.operand(b, K, N, false);
        long cOff = c.offset();
        float alpha = g.alpha();
        cx.pool.forRange(tiles, grain, (w, lo, hi) -> {
            int i0 = lo * TILE, rows = Math.min(n, hi * TILE) - i0;
            if (byRows) {
                bf16.thread(w).matmul(new Dnnl.Key(rows, N, K, tA, A.ld(), tB, B.ld(), ldc, alpha, beta),
                        A.buffer().base, A.offset() + (tA ? i0 : (long) i0 * A.ld()), B.buffer().base, B.offset(), C, cOff + (long) i0 * ldc);
            } else {
                bf16.thread(w).matmul(new Dnnl.Key(M, rows, K, tA, A.ld(), tB, B.ld(), ldc, alpha, beta),
                        A.buffer().base, A.offset(), B.buffer().base, B.offset() + (tB ? (long) i0 * B.ld() : i0), C, cOff + i0);
            }
        });
    }
}
