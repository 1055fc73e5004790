package bitskip.engine.tornado;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.Backends;
import bitskip.engine.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The documented way to see the OpenCL C that TornadoVM generated from a kernel method: a JVM started with
 * TornadoVM's flags and {@code -Dtornado.printKernel=True -Dtornado.print.kernel.dir=FILE} appends each
 * kernel's source to FILE when it compiles it. (TornadoVM reads these flags once, at its start: hence a
 * JVM of its own.)
 */
class KernelSourcePrintTest {
    /** Allocates one tensor on the TornadoVM backend: compiles and runs the arena's clear and zero kernels. */
    public static void main(String[] args) {
        try (TornadoBackend be = new TornadoBackend()) {
            be.alloc("t", 8).close();
        }
    }

    @Test
    void printKernelWritesTheGeneratedOpenCLSource(@TempDir Path dir) throws Exception {
        Requirements.skipOrFail("tornado", Backends.tornadoUnavailableReason()).ifPresent(why -> abort(why));
        String home = System.getProperty("tornadovm.home");
        Path argfile = Path.of(home == null ? "" : home, "tornado-argfile");
        if (!Files.isRegularFile(argfile)) {
            abort("no TornadoVM argument file at " + argfile + " (-Dtornadovm.home)");
        }
        Path file = dir.resolve("kernels.cl");
        Process p = new ProcessBuilder(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "@" + argfile, "-Dtornado.recover.bailout=False", "-Dtornado.printKernel=True",
                "-Dtornado.print.kernel.dir=" + file, "-Dbitskip.tornado.memory=16m", "-Xmx512m", "-cp",
                System.getProperty("java.class.path"), KernelSourcePrintTest.class.getName()))
                .directory(dir.toFile()).redirectErrorStream(true).redirectOutput(dir.resolve("out.txt").toFile()).start();
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "the child JVM did not finish in 300 s");
        assertEquals(0, p.exitValue(), () -> "child JVM failed: " + read(dir.resolve("out.txt")));
        String source = read(file);
        assertTrue(source.contains("__kernel void zero("), "no kernel named zero in " + file + ":\n" + source);
    }

    private static String read(Path f) {
        try {
            return Files.isRegularFile(f) ? Files.readString(f) : "(no file " + f + ")";
        } catch (java.io.IOException e) {
            return "(cannot read " + f + ": " + e + ")";
        }
    }
}
