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
 * Every check of the equivalence harness ({@link Equivalence}) on every target: Backend's compositions on
 * the reference primitives, the cpu backend (1 and 2 threads, vector and scalar), each OpenCL device (fp64 and
 * float-only). A target that cannot run here is skipped with its reason, or fails when
 * {@code BITSKIP_REQUIRE} names it. Prints the matrix at the end and writes {@code target/device-matrix.txt}.
 */
class EquivalenceTest {
    private static final List<Equivalence.Result> RESULTS = Collections.synchronizedList(new ArrayList<>());
    private static final List<Equivalence.Target> TARGETS = Equivalence.targets();

    @TestFactory
    Stream<DynamicTest> everyCheckOnEveryTarget() {
        List<DynamicTest> tests = new ArrayList<>();
        for (Equivalence.Target t : TARGETS) {
            for (String check : EquivalenceChecks.ALL.keySet()) {
                tests.add(DynamicTest.dynamicTest(check + " on " + t.label(), () -> {
                    if (t.open() == null) {
                        Requirements.skipOrFail(t.requirement(), t.unavailable()).ifPresent(why -> {
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
        Equivalence.print(System.out, RESULTS, TARGETS);
        Path out = Path.of("target", "device-matrix.txt");
        Files.createDirectories(out.getParent());
        try (PrintStream ps = new PrintStream(Files.newOutputStream(out))) {
            Equivalence.print(ps, RESULTS, TARGETS);
        }
    }
}
