package bitskip.model.cli;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.ablation.AblationRunner;
import java.util.List;
import org.junit.jupiter.api.Test;

class AblationThreadsTest {

    @Test
    void parallelRunsShareTheCoresUnlessTheUserSaidOtherwise() {
        assertEquals(1, AblationCommand.threadsPerRun(null, null, 2, 2), "two runs on two cores: one thread each");
        assertEquals(4, AblationCommand.threadsPerRun(null, null, 4, 16));
        assertEquals(1, AblationCommand.threadsPerRun(null, null, 8, 2), "never below one");
        assertEquals(0, AblationCommand.threadsPerRun(null, null, 1, 16), "one run at a time keeps its default");
        assertEquals(0, AblationCommand.threadsPerRun(null, "3", 2, 16), "-Dbitskip.threads is inherited as it is");
        assertEquals(5, AblationCommand.threadsPerRun(5, "3", 2, 16), "--threads wins");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AblationCommand.threadsPerRun(0, null, 2, 2));
        assertTrue(e.getMessage().contains("--threads must be >= 1, got 0"), e.getMessage());
    }

    @Test
    void theChildJvmGetsTheOptionOnceReplacingAnInheritedOne() {
        AblationRunner.Java j = new AblationRunner.Java("java", List.of("-Xmx1g", "-Dbitskip.threads=2", "-Dother=1"), "cp");
        assertEquals(List.of("-Xmx1g", "-Dother=1", "-Dbitskip.threads=1"), j.withJvmArg("-Dbitskip.threads=1").jvmArgs());
    }

    @Test
    void theReportsCommandLeavesOutWhereTheRunsWent() {
        assertEquals(List.of("--preset", "tiny", "--steps", "9", "--threads", "1"), AblationCommand.reproducingArgs(List.of(
                "ablation", "--preset", "tiny", "--parallel", "2", "--steps", "9", "--spark", "local[2]", "--threads", "1", "--report-only")));
        assertEquals(List.of("--out", "o", "--steps", "9"), AblationCommand.reproducingArgs(List.of(
                "--out", "o", "--spark", "--steps", "9", "--parallel=3", "--spark=spark://h:7077")));
        assertEquals(List.of("--steps", "9"), AblationCommand.reproducingArgs(List.of("--steps", "9", "--spark")));
        assertEquals(List.of("--data", "\"$BITSKIP_DATA\"", "--steps", "9", "--data", "\"$BITSKIP_DATA\""),
                AblationCommand.reproducingArgs(List.of("--data", "/home/me/wt2", "--steps", "9", "--data=/x")),
                "no absolute data path in a committed report");
    }

    @Test
    void sparkWithoutTheSparkModuleIsAOneLineError() {
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        java.io.PrintStream old = System.err;
        System.setErr(new java.io.PrintStream(err, true));
        try {
            assertEquals(2, Main.run(new AblationCommand(), new String[] {"--steps", "1", "--out", "x", "--spark", "local[2]"}));
        } finally {
            System.setErr(old);
        }
        assertTrue(err.toString().contains("--spark needs the optional spark module"), err.toString());
        assertTrue(err.toString().lines().count() == 1, err.toString());
    }
}
