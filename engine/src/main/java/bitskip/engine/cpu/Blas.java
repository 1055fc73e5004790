package bitskip.engine.cpu;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.dnnl.global.dnnl;
import org.bytedeco.openblas.global.openblas;
import org.bytedeco.openblas.global.openblas_full;

/**
 * OpenBLAS (JavaCPP preset {@code org.bytedeco:openblas}) for the float GEMMs, row-major, on off-heap tensors
 * at element offsets. Offsets go through reusable pointer views (no copy, no allocation per call); the views
 * make an instance single-threaded, like the backend that owns it.
 */
final class Blas {
    private static final Throwable LOAD_ERROR;

    static {
        Throwable err = null;
        try {
            // loads libopenblas and the JNI bridge; fails here, not in the first GEMM, when they are missing
            org.bytedeco.javacpp.Loader.load(openblas.class);
            openblas_full.openblas_get_num_threads();
        } catch (Throwable t) {
            err = t;
        }
        LOAD_ERROR = err;
    }

    /** Null when OpenBLAS loaded; otherwise why it did not (missing native classifier, wrong platform). */
    static Throwable loadError() {
        return LOAD_ERROR;
    }

    static void setThreads(int threads) {
        openblas_full.openblas_set_num_threads(threads);
    }

    static String config() {
        return openblas_full.openblas_get_config().getString();
    }

    /** A FloatPointer whose address and position are re-aimed per call. */
    private static final class View extends FloatPointer {
        View() {
            super((Pointer) null);
        }

        View at(CpuTensor t, long offset) {
            this.address = t.ptr.address();
            this.capacity = t.ptr.capacity();
            this.limit = this.capacity;
            this.position = offset;
            return this;
        }
    }

    private final View va = new View();
    private final View vb = new View();
    private final View vc = new View();

    /**
     * C (M, Nc) at cOff, ldc = beta·C + A'·B' where A' = transA ? Aᵀ : A and B' = transB ? Bᵀ : B; A is
     * (M, K) or (K, M) with leading dimension lda, B is (K, Nc) or (Nc, K) with ldb (row-major). Dimensions
     * of zero are a no-op.
     */
    void sgemm(boolean transA, boolean transB, int M, int Nc, int K, float alpha,
               CpuTensor A, long aOff, int lda, CpuTensor B, long bOff, int ldb,
               float beta, CpuTensor C, long cOff, int ldc) {
        if (M <= 0 || Nc <= 0) {
            return;
        }
        if (K <= 0) {
            throw new IllegalArgumentException("sgemm: K = " + K);
        }
        openblas.cblas_sgemm(openblas.CblasRowMajor,
                transA ? openblas.CblasTrans : openblas.CblasNoTrans,
                transB ? openblas.CblasTrans : openblas.CblasNoTrans,
                M, Nc, K, alpha, va.at(A, aOff), lda, vb.at(B, bOff), ldb, beta, vc.at(C, cOff), ldc);
    }

    /**
     * {@link #sgemm} on oneDNN's sgemm (row-major too) instead of OpenBLAS's, on the calling thread alone
     * (OMP_NUM_THREADS=1, {@link #ONEDNN_LONG_K}). Its result does not depend on the operands' alignment (checked
     * bit for bit over 84 combinations of element offsets at the head's dX part shape).
     */
    void sgemmOneDnn(boolean transA, boolean transB, int M, int Nc, int K, float alpha,
                     CpuTensor A, long aOff, int lda, CpuTensor B, long bOff, int ldb,
                     float beta, CpuTensor C, long cOff, int ldc) {
        if (M <= 0 || Nc <= 0) {
            return;
        }
        Dnnl.check(dnnl.dnnl_sgemm((byte) (transA ? 'T' : 'N'), (byte) (transB ? 'T' : 'N'),
                M, Nc, K, alpha, va.at(A, aOff), lda, vb.at(B, bOff), ldb, beta, vc.at(C, cOff), ldc), "dnnl_sgemm");
    }

    /**
     * Whether the parts of a product cut along K ({@link CpuLinear#kParts}: the LM head's dX, R × C from R × V
     * times V × C) run on oneDNN's sgemm: 192–197 GFLOP/s on one core at those parts (512 × 256 or 512 × 512 ×
     * 4,096) where OpenBLAS's runs 174–178 (AVX-512, Cooperlake kernels); OpenBLAS is faster at the head's other two
     * products, so only these change. Needs oneDNN loaded and OMP_NUM_THREADS=1 (one thread per call, as every
     * product of the pool); otherwise, or with -Dbitskip.cpu.longK=openblas, OpenBLAS (other last bits).
     */
    static final boolean ONEDNN_LONG_K = !"openblas".equals(System.getProperty("bitskip.cpu.longK", "onednn"))
            && Dnnl.loadReason() == null && Dnnl.ompReason() == null;
}
