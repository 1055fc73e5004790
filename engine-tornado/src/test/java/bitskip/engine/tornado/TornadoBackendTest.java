package bitskip.engine.tornado;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.engine.JavaBackend;
import bitskip.engine.Requirements;
import bitskip.engine.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The TornadoVM backend's tensors, errors and selection (its ops are the equivalence harness's). */
class TornadoBackendTest {
    @BeforeAll
    static void needsTornado() {
        Requirements.skipOrFail("tornado", Backends.tornadoUnavailableReason()).ifPresent(why -> abort(why));
    }

    @Test
    void tensorsRoundTripAndCloseReturnsTheirMemory() {
        try (TornadoBackend be = new TornadoBackend()) {
            long before = be.allocatedBytes();
            Tensor t = be.alloc("t", 1000);
            float[] back = new float[1000];
            be.download(t, back);
            assertArrayEquals(new float[1000], back, "alloc zero-fills (the range may hold an earlier tensor's data)");
            float[] data = new float[1000];
            for (int i = 0; i < data.length; i++) {
                data[i] = i * 0.5f - 7;
            }
            be.upload(t, data);
            be.download(t, back);
            assertArrayEquals(data, back);
            assertTrue(be.allocatedBytes() >= before + 4000);
            t.close();
            t.close();
            assertEquals(before, be.allocatedBytes());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.download(t, back));
            assertTrue(e.getMessage().contains("tensor t is closed"), e.getMessage());
        }
    }

    @Test
    void aTensorTooLargeForTheArenaNamesItselfAndTheProperty() {
        try (TornadoBackend be = new TornadoBackend()) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> be.alloc("huge.weights", Integer.MAX_VALUE - 1024));
            assertTrue(e.getMessage().contains("huge.weights") && e.getMessage().contains(KernelPlan.MEMORY_PROPERTY),
                    e.getMessage());
            Tensor ok = be.alloc("after", 16);
            ok.close();
        }
    }

    @Test
    void tensorsOfAnotherBackendAreRefused() {
        try (TornadoBackend be = new TornadoBackend(); Backend java = new JavaBackend()) {
            Tensor foreign = java.alloc("foreign", 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> be.upload(foreign, new float[4]));
            assertTrue(e.getMessage().contains("foreign"), e.getMessage());
        }
    }

    @Test
    void devicesAreChosenByIdOrNameAndAnUnknownOneListsThoseThatExist() {
        TornadoDevices.Device first = TornadoDevices.list().get(0);
        assertEquals(first.id(), TornadoDevices.select(first.id()).id());
        assertEquals(first.id(), TornadoDevices.select(first.platform().substring(0, 4)).id());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TornadoDevices.select("no-such-device"));
        assertTrue(e.getMessage().contains(first.id()), e.getMessage());
        assertTrue(Backends.create("tornado").description().startsWith("TornadoVM"));
    }
}
