package bitskip.model.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code java -cp CP BitSkipTrain} (and Eval, Generate, Ablation) works as users type it: a class of that exact
 * name in the unnamed package, whose main runs the command of bitskip.model.cli (checked in a child JVM,
 * since main exits).
 */
class LaunchersTest {

    @Test
    void eachLauncherRunsItsCommand() throws Exception {
        String[][] launchers = {{"BitSkipTrain", "train"}, {"BitSkipEval", "eval"}, {"BitSkipGenerate", "generate"},
                {"BitSkipAblation", "ablation"}};
        for (String[] l : launchers) {
            Class<?> c = Class.forName(l[0]);
            assertEquals("", c.getPackageName(), l[0] + " is in the unnamed package");
            assertNotNull(c.getMethod("main", String[].class));
            String out = run(l[0], "--help");
            assertTrue(out.contains("Usage: " + l[1]), l[0] + " --help printed:\n" + out);
        }
    }

    private static String run(String mainClass, String... args) throws IOException, InterruptedException {
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new java.util.ArrayList<>(List.of(java.toString(), "--add-modules", "jdk.incubator.vector",
                "-cp", System.getProperty("java.class.path"), mainClass));
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), mainClass + " did not end");
        assertEquals(0, p.exitValue(), mainClass + " exit status; output:\n" + out);
        return out;
    }
}
