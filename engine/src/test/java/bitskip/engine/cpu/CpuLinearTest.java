package bitskip.engine.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.Requirements;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Which of the cpu backend's products are cut along K (their values against the reference are in EquivalenceChecks.gemm,
 * their bits on one and two threads in CpuBackendDeterminismTest).
 */
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

    /**
     * Under the build's OMP_NUM_THREADS=1 the parts run on oneDNN's sgemm, so that EquivalenceChecks' split-K
     * cases and the determinism test check that path (a oneDNN that failed to load would leave it untested).
     */
    @Test
    void thePartsRunOnOneDnnInTheBuild() {
        assertEquals("1", System.getenv("OMP_NUM_THREADS"), "the build runs the tests with OMP_NUM_THREADS=1");
        assertTrue(Blas.ONEDNN_LONG_K, "oneDNN did not load: " + Dnnl.loadReason());
    }

    /** The shape CpuBackendDeterminismTest runs on one and two threads (the parts are a function of K alone). */
    @Test
    void theDeterminismTestsShapeIsCutAlongK() {
        assertEquals(4, CpuLinear.kParts(24, 40, 3 * 4096 + 77));
    }
}
