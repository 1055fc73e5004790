package bitskip.engine;

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
 * Every check of the one equivalence harness ({@link Equivalence}, the checks and tolerances the cpu and
 * opencl backends pass) on every TornadoVM device, against the Java reference: the TornadoVM columns of the
 * device matrix, printed at the end and written to {@code target/device-matrix-tornado.txt}. A TornadoVM
 * device is a device in the reference's order (family DEVICE_FP64): exact wherever the reference has no
 * whole-tensor sum. Without TornadoVM in this JVM the test is skipped with the reason, or fails when
 * {@code BITSKIP_REQUIRE} names tornado. (In the engine's package: the harness's checks are package-private.)
 */
class TornadoEquivalenceTest {
    private static final List<Equivalence.Result> RESULTS = Collections.synchronizedList(new ArrayList<>());
    private static final List<Equivalence.Target> TARGETS = new ArrayList<>();

    @TestFactory
    Stream<DynamicTest> everyCheckOnEveryTornadoDevice() {
        Requirements.skipOrFail("tornado", Backends.tornadoUnavailableReason()).ifPresent(why -> abort(why));
        for (Equivalence.Target t : Equivalence.targets()) {
            if ("tornado".equals(t.requirement())) {
                TARGETS.add(t);
            }
        }
        List<DynamicTest> tests = new ArrayList<>();
        for (Equivalence.Target t : TARGETS) {
            for (String check : EquivalenceChecks.ALL.keySet()) {
                tests.add(DynamicTest.dynamicTest(check + " on " + t.label(), () -> {
                    if (t.open() == null) {
                        Requirements.skipOrFail("tornado", t.unavailable()).ifPresent(why -> {
                            RESULTS.add(new Equivalence.Result(check, t.label(), Equivalence.Outcome.SKIP, why));
                            abort(t.label() + " skipped: " + why);
                        });
                    }
                    Equivalence.Result r = Equivalence.run(check, t);
                    RESULTS.add(r);
                    if (r.outcome() == Equivalence.Outcome.FAIL) {
                        fail(r.detail());
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
        Equivalence.print(System.out, RESULTS, TARGETS);
        Path out = Path.of("target", "device-matrix-tornado.txt");
        Files.createDirectories(out.getParent());
        try (PrintStream ps = new PrintStream(Files.newOutputStream(out))) {
            Equivalence.print(ps, RESULTS, TARGETS);
        }
    }
}
