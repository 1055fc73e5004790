package bitskip.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

class BackendsTest {

    @Test
    void cpuIsRegisteredAndTheDefault() {
        assertEquals("cpu", Backends.defaultName());
        boolean found = false;
        for (String n : Backends.names()) {
            found |= n.equals("cpu");
        }
        assertTrue(found, "cpu in Backends.names()");
        assertEquals("java", Backends.create("java").name());
    }

    @Test
    void createsTheCpuBackend() {
        Requirements.skipOrFail("cpu", CpuBackend.unavailableReason()).ifPresent(r -> abort("cpu backend tests skipped: " + r));
        try (Backend b = Backends.create("cpu")) {
            assertEquals("cpu", b.name());
            assertTrue(b.description().contains("OpenBLAS"), b.description());
        }
    }
}
