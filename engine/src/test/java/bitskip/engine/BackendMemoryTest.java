package bitskip.engine;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.cpu.CpuBackend;
import bitskip.engine.cpu.CpuTensor;
import bitskip.engine.opencl.OpenCLBackend;
import bitskip.engine.opencl.OpenCLDevices;
import org.junit.jupiter.api.Test;

/**
 * Off-heap and device memory comes back when it is given back, not when the garbage collector gets to it:
 * many backends opened, filled and closed in one JVM leave the process's count of live bytes where it was.
 */
class BackendMemoryTest {

    @Test
    void cpuBackendsClosedOneAfterAnotherHoldNoMemory() {
        Requirements.skipOrFail("cpu", CpuBackend.unavailableReason()).ifPresent(r -> abort("cpu backend tests skipped: " + r));
        long before = CpuTensor.liveBytes();
        for (int i = 0; i < 40; i++) {
            try (CpuBackend be = new CpuBackend(2, true)) {
                Tensor a = be.alloc("a", 1 << 20), b = be.alloc("b", 1 << 20);
                be.add(a, a, b, 1 << 20);
                assertTrue(CpuTensor.liveBytes() >= before + (8L << 20), "the tensors are counted");
                a.close(); // one tensor given back at once
                assertTrue(CpuTensor.liveBytes() < before + (8L << 20));
                be.alloc("c", 1 << 20); // left for the backend's close
            }
            assertEquals(before, CpuTensor.liveBytes(), "after closing backend " + i);
        }
    }

    @Test
    void aClosedTensorRefusesUseWithItsName() {
        Requirements.skipOrFail("cpu", CpuBackend.unavailableReason()).ifPresent(r -> abort("cpu backend tests skipped: " + r));
        try (CpuBackend be = new CpuBackend(1, true)) {
            Tensor t = be.alloc("layers.0.attn.q_proj.weight", 16);
            t.close();
            t.close(); // twice is harmless
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.zero(t));
            assertTrue(e.getMessage().contains("layers.0.attn.q_proj.weight"), e.getMessage());
        }
        Tensor h = new JavaBackend().alloc("heap", 4);
        h.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> new JavaBackend().zero(h));
        assertTrue(e.getMessage().contains("heap"), e.getMessage());
    }

    @Test
    void openclBackendsGiveTheirBuffersBack() {
        Requirements.skipOrFail("opencl", OpenCLDevices.list().isEmpty() ? OpenCLDevices.unavailableReason() : null)
                .ifPresent(r -> abort("opencl tests skipped: " + r));
        for (int i = 0; i < 10; i++) {
            OpenCLBackend be = new OpenCLBackend(OpenCLDevices.list().get(0));
            Tensor a = be.alloc("a", 1 << 18), b = be.alloc("b", 1 << 18);
            assertEquals(2L << 20, be.allocatedBytes());
            a.close();
            assertEquals(1L << 20, be.allocatedBytes());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.zero(a));
            assertTrue(e.getMessage().contains("a was closed"), e.getMessage());
            be.close();
            assertEquals(0, be.allocatedBytes());
            assertThrows(IllegalStateException.class, () -> be.zero(b));
        }
    }
}
