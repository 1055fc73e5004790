package bitskip.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.Gemm;
import bitskip.engine.Mat;
import bitskip.engine.Requirements;
import bitskip.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The cpu backend's products cut along K (their values against the reference are in EquivalenceChecks.gemm). */
class CpuLinearTest {

    @BeforeEach
    void requireOpenBlas() {
        Requirements.skipOrFail("cpu", CpuBackend.unavailableReason()).ifPresent(r -> abort("cpu backend tests skipped: " + r));
    }

    @Test
    void onlyASmallCBesideALongKIsCutAlongK() {
        assertEquals(13, CpuLinear.kParts(512, 256, 50_257), "small's head dX, 512-row chunk");
        assertEquals(13, CpuLinear.kParts(512, 768, 50_257), "paper-85m's head dX");
        assertEquals(1, CpuLinear.kParts(512, 50_257, 256), "the head's logits: K short");
        assertEquals(1, CpuLinear.kParts(50_257, 256, 512), "the head's weight gradient: C large");
        assertEquals(1, CpuLinear.kParts(512, 256, 8191), "K under two parts");
        assertEquals(1, CpuLinear.kParts(2048, 1024, 50_257), "C over the scratch bound");
    }

    /** The parts are a function of K: one and two threads give the same bits, as for products cut into blocks of C. */
    @Test
    void productSplitAlongKGivesTheSameBitsOnOneAndTwoThreads() {
        int M = 24, N = 40, K = 3 * 4096 + 77;
        assertEquals(4, CpuLinear.kParts(M, N, K), "this shape is cut along K");
        float[][] results = new float[2][];
        for (int threads = 1; threads <= 2; threads++) {
            try (CpuBackend be = new CpuBackend(threads, true)) {
                Random rnd = new Random(7);
                Tensor g = rand(be, rnd, M * K), w = rand(be, rnd, K * N), dx = rand(be, rnd, M * N);
                be.gemm(new Gemm(M, N, K, 0.25f, Mat.of(g, K), Mat.of(w, N), 1.0f, Mat.of(dx, N), null));
                results[threads - 1] = new float[M * N];
                be.download(dx, results[threads - 1]);
            }
        }
        for (int j = 0; j < M * N; j++) {
            if (Float.floatToRawIntBits(results[0][j]) != Float.floatToRawIntBits(results[1][j])) {
                assertArrayEquals(results[0], results[1], "1 and 2 threads differ at [" + j + "]");
            }
        }
    }

    private static Tensor rand(CpuBackend be, Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextDouble() * 2 - 1);
        }
        Tensor t = be.alloc("t", n);
        be.upload(t, a);
        return t;
    }
}
