package bitskip.engine.cpu;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;
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
}
