package bitskip.bench;

import bitskip.kernels.Hadamard;
import bitskip.kernels.Matmul;
import bitskip.kernels.Quantize;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The scalar reference kernels on the projection shapes of the presets (N = 512 rows): the baseline the
 * fast backends are measured against. GFLOP/s = 2·N·C·OC / time for the matmul; FWHT moves 2·N·P floats.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class ReferenceKernelsBench {
    @Param({"128", "256", "512"})
    int C;

    int N = 512;
    float[] x, w, out, wHat, xq, scale, z;

    @Setup
    public void setup() {
        Random r = new Random(1);
        x = new float[N * C];
        w = new float[C * C];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian() * 0.02f;
        }
        out = new float[N * C];
        wHat = new float[C * C];
        xq = new float[N * C];
        scale = new float[N];
        z = new float[N * C];
    }

    /** y = x·Wᵀ, (N, C)·(C, C)ᵀ. */
    @Benchmark
    public float[] matmulForward() {
        Matmul.forward(out, x, w, null, N, C, C);
        return out;
    }

    /** Ternary weights and 8-bit activations of one projection. */
    @Benchmark
    public float[] quantize() {
        Quantize.ternaryForward(wHat, null, w, C * C);
        Quantize.activationForward(xq, null, scale, x, N, C, 8);
        return xq;
    }

    /** The orthonormal FWHT of N rows of C (C a power of two). */
    @Benchmark
    public float[] fwht() {
        Hadamard.forward(z, x, N, C);
        return z;
    }
}
