package bitskip.engine.opencl;

import static org.junit.jupiter.api.Assertions.*;
import org.junit.jupiter.api.Assumptions;

import bitskip.engine.Requirements;
import bitskip.engine.Backend;
import bitskip.engine.JavaBackend;
import bitskip.engine.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Device enumeration, selection by P:D and property, and the errors that list what exists. */
class OpenCLDevicesTest {
    @BeforeEach
    void needOpenCL() {
        Requirements.skipOrFail("opencl", OpenCLDevices.list().isEmpty() ? "no OpenCL platform: " + OpenCLDevices.unavailableReason() : null)
                .ifPresent(Assumptions::abort);
    }

    @Test
    void listsDevicesWithTheirCapabilities() {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        OpenCLDevices.print(new PrintStream(b, true, StandardCharsets.UTF_8), List.of("java", "opencl"));
        String s = b.toString(StandardCharsets.UTF_8);
        OpenCLDevices.Device d = OpenCLDevices.list().get(0);
        assertTrue(s.contains("0:0"), s);
        assertTrue(s.contains(d.name().substring(0, Math.min(20, d.name().length()))), s);
        assertTrue(s.contains("CU=") && s.contains("fp64=") && s.contains("wg="), s);
        assertTrue(d.computeUnits() > 0 && d.globalMemBytes() > 0 && d.maxWorkGroupSize() > 0);
    }

    @Test
    void selectsByIdAndByProperty() {
        assertEquals("0:0", OpenCLDevices.select("0:0").id());
        assertEquals("0:0", OpenCLDevices.select(" 0 : 0 ").id());
        String old = System.getProperty(OpenCLDevices.PROPERTY);
        System.setProperty(OpenCLDevices.PROPERTY, "0:0");
        try {
            assertEquals("0:0", OpenCLDevices.select(null).id());
        } finally {
            if (old == null) {
                System.clearProperty(OpenCLDevices.PROPERTY);
            } else {
                System.setProperty(OpenCLDevices.PROPERTY, old);
            }
        }
    }

    @Test
    void selectsByPlatformName() {
        OpenCLDevices.Device d = OpenCLDevices.list().get(0);
        String word = d.platformName().split("\\s+")[0];
        assertEquals(d.platformIndex(), OpenCLDevices.select(word.toUpperCase()).platformIndex());
        assertEquals(0, OpenCLDevices.select(word + ":0").deviceIndex());
    }

    @Test
    void unknownDeviceListsTheExistingOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> OpenCLDevices.select("7:3"));
        assertTrue(e.getMessage().contains("7:3 does not exist"), e.getMessage());
        assertTrue(e.getMessage().contains("0:0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> OpenCLDevices.select("nosuchvendor"));
        assertTrue(e.getMessage().contains("nosuchvendor") && e.getMessage().contains("0:0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> OpenCLDevices.select("0:x"));
        assertTrue(e.getMessage().contains("P:D") && e.getMessage().contains("0:0"), e.getMessage());
    }

    @Test
    void tooLargeAllocationSaysWhatTheDeviceHas() {
        try (OpenCLBackend be = new OpenCLBackend("0:0")) {
            long big = be.device().maxAllocBytes() / 4 + 1;
            if (big <= Integer.MAX_VALUE) { // one tensor larger than the largest buffer the device allows
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.alloc("huge", (int) big));
                assertTrue(e.getMessage().contains("lacks memory for tensor huge"), e.getMessage());
                assertTrue(e.getMessage().contains("0:0"), e.getMessage());
            }
            // more tensors than the memory holds; against a small budget, since on PoCL device memory is host RAM
            be.limitMemory(be.allocatedBytes() + (64L << 20));
            be.alloc("first", 10 << 20);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> be.alloc("second", 10 << 20));
            assertTrue(e.getMessage().contains("lacks memory for tensor second: 40.0 MiB requested"), e.getMessage());
            assertTrue(e.getMessage().contains("usable here"), e.getMessage());
            assertTrue(e.getMessage().contains("0:0"), e.getMessage());
        }
    }

    @Test
    void refusesTensorsOfAnotherBackendAndNamesItself() {
        try (OpenCLBackend be = new OpenCLBackend("0:0"); Backend java = new JavaBackend()) {
            assertEquals("opencl", be.name());
            assertTrue(be.description().startsWith("OpenCL 0:0"), be.description());
            Tensor h = java.alloc("heap", 4);
            Tensor d = be.alloc("dev", 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.zero(h));
            assertTrue(e.getMessage().contains("heap"), e.getMessage());
            float[] x = {1, 2, 3, 4}, y = new float[4];
            be.upload(d, x);
            be.download(d, y);
            assertArrayEquals(x, y);
            assertThrows(IllegalArgumentException.class, () -> be.upload(d, new float[5]));
        }
    }
}
