package bitskip.bench;

import bitskip.kernels.TernaryPack;
import bitskip.model.infer.InferenceBench;
import bitskip.model.infer.LmHead;
import bitskip.model.infer.PackedGemm;
import bitskip.model.infer.Parallel;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The products of packed inference on the decode shapes, for N rows at once (N = 1: one decoded token;
 * N = k + 1: a self-speculative verification of k drafts): the LM head (V = 50,257 outputs, d_model C inputs)
 * in float ({@link PackedGemm#dense}) and in int8 ({@link LmHead}, per-row scales, on each {@link LmHead.Int8Kernel}:
 * {@code -p int8=java,onednn}; onednn needs OMP_NUM_THREADS=1 in the environment and VNNI or AMX), and the int8 ×
 * ternary FFN up projection C → 4C ({@link PackedGemm#ternary}, i2_g128). Threads: {@code -p threads=N} (default 2).
 * Weight bytes per call: float head 4·C·V, int8 head C·V + 4·V, FFN C·4C/4.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class InferenceKernelsBench {
    /** d_model of small and paper-85m. */
    @Param({"256", "512"})
    int C;

    /** Rows per call. */
    @Param({"1", "3", "9"})
    int N;

    @Param({"2"})
    int threads;

    /** The int8 head's kernel. */
    @Param({"java", "onednn"})
    String int8;

    /** The int8 head's activation code bits: 9 (±255, two oneDNN rows per row) or 8 (±127, one). */
    @Param({"9"})
    int bits;

    static final int V = 50257;
    Parallel par;
    float[] head, x, logits;
    LmHead int8Head;
    LmHead.Int8Kernel int8Kernel;
    byte[] packed;
    short[] q;
    int[] acc;
    int Cp, OC;

    @Setup(Level.Trial)
    public void setup() {
        par = new Parallel(threads);
        SplittableRandom r = new SplittableRandom(1);
        head = new float[V * C];
        for (int i = 0; i < head.length; i++) {
            head[i] = (float) (r.nextDouble() - 0.5);
        }
        int8Head = LmHead.quantize(head, V, C, LmHead.activationLevels(bits));
        int8Kernel = LmHead.Int8Kernel.parse(int8); // onednn where it cannot run: refused with the reason
        x = new float[N * C];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextDouble();
        }
        logits = new float[N * V];
        OC = 4 * C;
        Cp = TernaryPack.i2PaddedCols(C);
        packed = InferenceBench.randomTernaryBytes(OC * TernaryPack.i2RowBytes(C), r);
        q = new short[N * Cp];
        for (int i = 0; i < q.length; i++) {
            q[i] = (short) (r.nextInt(255) - 127);
        }
        acc = new int[N * OC];
    }

    @Benchmark
    public float headDense() {
        PackedGemm.dense(logits, x, 0, head, N, C, V, par);
        return logits[V - 1];
    }

    @Benchmark
    public float headInt8() {
        int8Head.forward(logits, x, 0, N, par, int8Kernel);
        return logits[V - 1];
    }

    @Benchmark
    public int ffnTernary() {
        PackedGemm.ternary(acc, q, packed, N, Cp, OC, par);
        return acc[OC - 1];
    }
}
