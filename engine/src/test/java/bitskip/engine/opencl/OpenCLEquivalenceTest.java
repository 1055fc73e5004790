package bitskip.engine.opencl;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.abort;

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
 * Every Backend op on every backend and device present (each OpenCL device twice: with its fp64
 * accumulators and with the float-only kernels), against the Java reference ({@link DeviceMatrix} holds
 * the checks and their tolerances). Prints the matrix at the end and writes it to
 * {@code target/device-matrix.txt}. Only a machine with no OpenCL platform skips the OpenCL column.
 */
class OpenCLEquivalenceTest {
    private static final List<DeviceMatrix.Result> RESULTS = Collections.synchronizedList(new ArrayList<>());
    private static final List<DeviceMatrix.Target> TARGETS = DeviceMatrix.targets();

    @TestFactory
    Stream<DynamicTest> everyOpOnEveryDevice() {
        List<DynamicTest> tests = new ArrayList<>();
        for (DeviceMatrix.Target t : TARGETS) {
            if (t.label().equals("java")) {
                continue; // the oracle against itself
            }
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
        List<DeviceMatrix.Target> shown = TARGETS.stream().filter(t -> !t.label().equals("java")).toList();
        DeviceMatrix.print(System.out, RESULTS, shown);
        Path out = Path.of("target", "device-matrix.txt");
        Files.createDirectories(out.getParent());
        try (PrintStream ps = new PrintStream(Files.newOutputStream(out))) {
            DeviceMatrix.print(ps, RESULTS, shown);
        }
    }
}
