package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;

import bitskip.engine.Gemm;
import bitskip.engine.Mat;

/**
 * The matrix products: every {@link Gemm} is one OpenBLAS {@code sgemm} on the calling thread (OpenBLAS
 * threads it; it never overlaps a pool job), on the tensors' off-heap memory at element offsets, no copies.
 * A bias is first copied into C's rows, then the product added (beta 1): bias + Σ rather than the
 * reference's Σ starting from the bias, within the GEMM tolerance.
 */
final class CpuLinear {
    private static int blasThreads = -1;

    private final CpuContext cx;
    private final Blas blas = new Blas();

    CpuLinear(CpuContext cx) {
        this.cx = cx;
        blasThreads(cx.threads);
    }

    /** OpenBLAS's thread count is process-wide: (re)asserted before each product. */
    private static synchronized void blasThreads(int n) {
        if (blasThreads != n) {
            Blas.setThreads(n);
            blasThreads = n;
        }
    }

    void gemm(Gemm g) {
        Mat a = g.a(), b = g.b(), c = g.c();
        CpuTensor C = of(c.tensor());
        float beta = g.beta();
        if (g.bias() != null) {
            CpuTensor bias = of(g.bias());
            int N = g.N(), ldc = c.ld(), c0 = c.offset();
            cx.pool.forRange(g.M(), Math.max(1, Vec.GRAIN / N), (w, lo, hi) -> {
                for (int i = lo; i < hi; i++) {
                    C.bb.put((c0 + i * ldc) << 2, bias.bb, 0, N << 2);
                }
            });
            beta = 1.0f;
        }
        blasThreads(cx.threads);
        blas.sgemm(a.transposed(), b.transposed(), g.M(), g.N(), g.K(), g.alpha(), of(a.tensor()), a.offset(), a.ld(),
                of(b.tensor()), b.offset(), b.ld(), beta, C, c.offset(), c.ld());
    }
}
