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
        // In bf16 the operands are their bf16 copies (each with its own offset and leading dimension), C is C
        CpuBf16 half = bf16;
        CpuBf16.Operand A16 = half == null ? null : half.operand(a, M, K, true), B16 = half == null ? null : half.operand(b, K, N, false);
        long aOff = A16 == null ? a.offset() : A16.offset(), bOff = B16 == null ? b.offset() : B16.offset(), cOff = c.offset();
        int la = A16 == null ? lda : A16.ld(), lb = B16 == null ? ldb : B16.ld();
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
}
