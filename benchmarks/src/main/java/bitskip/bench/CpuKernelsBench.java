package bitskip.bench;

import bitskip.engine.AttentionActs;
import bitskip.engine.AttentionShape;
import bitskip.engine.Backend;
import bitskip.engine.LinearActs;
import bitskip.engine.LinearParams;
import bitskip.engine.LinearScratch;
import bitskip.engine.LmHead;
import bitskip.engine.Norm;
import bitskip.engine.NormStats;
import bitskip.engine.QuantLinear;
import bitskip.engine.Backends;
import bitskip.engine.Tensor;
import java.util.Random;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The hot ops of a training step on a backend (default cpu; {@code -p backend=java} for the reference),
 * on the shapes of the three presets with 512 rows: the quantized projection d→4d forward and backward (GEMM
 * shape of the FFN up projection), H-BitLinear's forward (LayerNorm + FWHT + quantize + GEMM), causal
 * attention forward and backward, and the LM head's chunked cross-entropy forward + backward.
 * GFLOP/s: projection forward 2·N·C·4C, backward twice that; head 6·N·C·V.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class CpuKernelsBench {
    @Param({"cpu"})
    String backend;

    /** d_model of tiny, small, paper-85m. */
    @Param({"128", "256", "512"})
    int C;

    static final int N = 512, V = 50257, T = 128;
    Backend be;
    Tensor x, w, out, pre, xHat, scale, wHat, dout, dpre, dinp, dw, z, lnOut, mean, rstd, lnW, lnB;
    Tensor q, k, v, att, probs, dq, dk, dv, work, datt, head, dx, dhead, logits;
    int[] targets;
    QuantLinear bitLinear, hBitLinear;
    LinearParams params, hParams, grads;
    LinearActs acts, hActs;
    LinearScratch scratch;
    AttentionShape shape;
    AttentionActs attActs;
    LmHead lmHead;

    @Setup(Level.Trial)
    public void setup() {
        be = Backends.create(backend);
        Random r = new Random(1);
        int F = 4 * C, NH = C / 64 == 0 ? 4 : C / 64 * 2, HS = C / NH, KV = NH / 2 * HS, B = N / T;
        x = rand(r, N * C, 1f);
        w = rand(r, F * C, 0.02f);
        out = be.alloc("out", N * F);
        pre = be.alloc("pre", N * F);
        xHat = be.alloc("xhat", N * C);
        scale = be.alloc("scale", N);
        wHat = be.alloc("what", F * C);
        dout = rand(r, N * F, 1f);
        dpre = be.alloc("dpre", N * F);
        dinp = be.alloc("dinp", N * C);
        dw = be.alloc("dw", F * C);
        z = be.alloc("z", N * C);
        lnOut = be.alloc("lnout", N * C);
        mean = be.alloc("mean", N);
        rstd = be.alloc("rstd", N);
        lnW = rand(r, C, 1f);
        lnB = rand(r, C, 0.1f);
        q = rand(r, N * C, 1f);
        k = rand(r, N * KV, 1f);
        v = rand(r, N * KV, 1f);
        att = be.alloc("att", N * C);
        probs = be.alloc("probs", B * NH * T * T);
        dq = be.alloc("dq", N * C);
        dk = be.alloc("dk", N * KV);
        dv = be.alloc("dv", N * KV);
        work = be.alloc("work", 2 * T * T);
        datt = rand(r, N * C, 1f);
        head = rand(r, V * C, 0.02f);
        dx = be.alloc("dx", N * C);
        dhead = be.alloc("dhead", V * C);
        logits = be.alloc("logits", 128 * V);
        targets = new int[N];
        for (int i = 0; i < N; i++) {
            targets[i] = r.nextInt(V);
        }
        bitLinear = QuantLinear.bitLinear(C, F, 8, true, true);
        hBitLinear = QuantLinear.hadamard(C, F, 1e-5f, 4, true, true);
        params = LinearParams.bitLinear(w);
        hParams = new LinearParams(w, new Norm(lnW, lnB));
        grads = LinearParams.bitLinear(dw);
        acts = new LinearActs(x, out, pre, xHat, scale, wHat, null, null, null);
        hActs = new LinearActs(x, out, pre, xHat, scale, wHat, z, lnOut, new NormStats(mean, rstd));
        scratch = new LinearScratch(dpre, null, null);
        shape = new AttentionShape(B, T, NH, NH / 2, HS);
        attActs = new AttentionActs(q, k, v, probs, null, att);
        lmHead = new LmHead(head, dhead, C, V, logits, 128);
    }

    private Tensor rand(Random r, int n, float std) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian() * std;
        }
        Tensor t = be.alloc("t", n);
        be.upload(t, a);
        return t;
    }

    @TearDown(Level.Trial)
    public void close() {
        be.close();
    }

    @Benchmark
    public float bitLinearForward() {
        return be.bitLinearForward(bitLinear, N, params, acts);
    }

    @Benchmark
    public void bitLinearBackward() {
        be.bitLinearBackward(bitLinear, N, params, acts, dout, dinp, grads, scratch);
    }

    @Benchmark
    public float hBitLinearForward() {
        return be.hBitLinearForward(hBitLinear, N, hParams, hActs);
    }

    @Benchmark
    public void attentionForward() {
        be.attentionForward(shape, attActs, work);
    }

    @Benchmark
    public void attentionBackward() {
        be.attentionBackward(shape, attActs, datt, dq, dk, dv, work);
    }

    @Benchmark
    public double headLoss() {
        return be.headLoss(lmHead, x, targets, N, 1.0f / N, dx);
    }
}
