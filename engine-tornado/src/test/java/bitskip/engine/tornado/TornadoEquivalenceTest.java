package bitskip.engine.tornado;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.Backends;
import bitskip.engine.Requirements;
import bitskip.engine.opencl.DeviceMatrix;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Every Backend op on every TornadoVM device, against the Java reference, with the checks and tolerances of
 * {@link DeviceMatrix} (the same suite the cpu and opencl backends pass): the TornadoVM column of the device
 * matrix, printed at the end and written to {@code target/device-matrix-tornado.txt}. The TornadoVM backend
 * is an exact target: on an fp64 device its kernels must reproduce the reference bit for bit except the
 * whole-tensor reductions.
 */
class TornadoEquivalenceTest {
    private static final List<DeviceMatrix.Result> RESULTS = Collections.synchronizedList(new ArrayList<>());
    private static final List<DeviceMatrix.Target> TARGETS = new ArrayList<>();

    @TestFactory
    Stream<DynamicTest> everyOpOnEveryTornadoDevice() {
        Requirements.skipOrFail("tornado", Backends.tornadoUnavailableReason()).ifPresent(why -> abort(why));
        for (TornadoDevices.Device d : TornadoDevices.list()) {
            TARGETS.add(new DeviceMatrix.Target("tornado " + d.id(), () -> new TornadoBackend(d), null, true));
        }
        List<DynamicTest> tests = new ArrayList<>();
        for (DeviceMatrix.Target t : TARGETS) {
            for (String check : DeviceMatrix.CHECKS.keySet()) {
                tests.add(DynamicTest.dynamicTest(check + " on " + t.label(), () -> {
                    DeviceMatrix.Result r = DeviceMatrix.run(check, t);
                    RESULTS.add(r);
                    switch (r.outcome()) {
                        case SKIP -> abort(r.detail());
                        case FAIL -> fail(r.detail());
                        default -> { }
                    }
                }));
            }
        }
        return tests.stream();
    }

    @AfterAll
    static void printMatrix() throws IOException {
        if (TARGETS.isEmpty()) {
            return;
        }
        DeviceMatrix.print(System.out, RESULTS, TARGETS);
        Path out = Path.of("target", "device-matrix-tornado.txt");
        Files.createDirectories(out.getParent());
        try (PrintStream ps = new PrintStream(Files.newOutputStream(out))) {
            DeviceMatrix.print(ps, RESULTS, TARGETS);
        }
    }
}
