package bitskip.engine.cpu;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.Backend;
import bitskip.engine.Gemm;
import bitskip.engine.JavaBackend;
import bitskip.engine.LmHead;
import bitskip.engine.Mat;
import bitskip.engine.Precision;
import bitskip.engine.Requirements;
import bitskip.engine.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * Precision bf16 of the cpu backend: the rounding to bfloat16, and every product equal to a float64 product of
 * the bf16-rounded operands up to float32 accumulation, in every layout the engine uses; the LM head's pinned
 * weight; determinism; the refusals.
 */
class CpuBf16Test {

    @Test
    void roundsToTheNearestBfloat16TiesToEven() {
        assertEquals((short) 0x3f80, CpuBf16.round(1.0f));
        assertEquals((short) 0x3f80, CpuBf16.round(Float.intBitsToFloat(0x3f808000)), "a tie goes to the even 0x3f80");
        assertEquals((short) 0x3f82, CpuBf16.round(Float.intBitsToFloat(0x3f818000)), "a tie goes to the even 0x3f82");
        assertEquals((short) 0x3f81, CpuBf16.round(Float.intBitsToFloat(0x3f808001)), "just above a tie rounds up");
        assertEquals((short) 0x7f80, CpuBf16.round(Float.POSITIVE_INFINITY));
        assertEquals((short) 0x7f80, CpuBf16.round(Float.MAX_VALUE), "beyond the largest bf16: infinity, as IEEE rounding");
        assertTrue(Float.isNaN(CpuBf16.value(CpuBf16.round(Float.NaN))));
        assertTrue(Float.isNaN(CpuBf16.value(CpuBf16.round(Float.intBitsToFloat(0x7f800001)))), "a NaN never becomes infinity");
        Random r = new Random(3);
        for (int i = 0; i < 100_000; i++) {
            float f = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(20) - 10));
            float v = CpuBf16.value(CpuBf16.round(f));
            float ulp = Math.ulp(v) * 65536; // bf16 has 16 fewer mantissa bits
            assertTrue(Math.abs(v - f) <= ulp / 2, f + " -> " + v);
        }
    }

    /** The vector conversion gives the scalar one's bits on every kind of float, at every alignment and tail length. */
    @Test
    void theVectorConversionEqualsTheScalarOne() {
        Random r = new Random(4);
        int n = 1000;
        java.nio.ByteBuffer src = java.nio.ByteBuffer.allocateDirect(4 * n).order(java.nio.ByteOrder.nativeOrder());
        float[] special = {0f, -0f, Float.NaN, Float.intBitsToFloat(0xffc00001), Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
                Float.MAX_VALUE, -Float.MAX_VALUE, Float.MIN_VALUE, Float.intBitsToFloat(0x3f808000), Float.intBitsToFloat(0x3f818000),
                Float.intBitsToFloat(0x7f7f8000), Float.intBitsToFloat(0x007f8000)};
        for (int i = 0; i < n; i++) {
            float f = i < special.length * 3 ? special[i % special.length] : Float.intBitsToFloat(r.nextInt());
            src.putFloat(4 * i, f);
        }
        for (int off : new int[] {0, 1, 7}) {
            for (int len : new int[] {n - 7, 16, 33, 5}) {
                java.nio.ByteBuffer a = java.nio.ByteBuffer.allocateDirect(2 * n).order(java.nio.ByteOrder.nativeOrder()),
                        b = java.nio.ByteBuffer.allocateDirect(2 * n).order(java.nio.ByteOrder.nativeOrder());
                CpuBf16.convertRun(true, src, off, a, 3, len);
                CpuBf16.convertRun(false, src, off, b, 3, len);
                for (int j = 0; j < len; j++) {
                    assertEquals(b.getShort(2 * (3 + j)), a.getShort(2 * (3 + j)), "offset " + off + ", element " + j + " of "
                            + src.getFloat(4 * (off + j)));
                    assertEquals(CpuBf16.round(src.getFloat(4 * (off + j))), b.getShort(2 * (3 + j)));
                }
            }
        }
    }

    static CpuBackend bf16Backend(int threads) {
        String why = CpuBackend.bf16UnavailableReason();
        Requirements.skipOrFail("bf16", why).ifPresent(reason -> Assumptions.assumeTrue(false, reason));
        CpuBackend be = new CpuBackend(threads, true);
        be.usePrecision(Precision.BF16);
        assertEquals(Precision.BF16, be.precision());
        return be;
    }

    private static float[] random(Random r, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        return x;
    }

    private static double bf(float f) {
        return CpuBf16.value(CpuBf16.round(f));
    }

    @Test
    void everyLayoutEqualsTheFloat64ProductOfTheRoundedOperands() {
        try (CpuBackend be = bf16Backend(2)) {
            Random r = new Random(11);
            // M >= N (blocks of rows) and N > M (blocks of columns), both past one 128-row block, K odd; and a small C
            // beside a long K (cut along K, as the head's dX)
            for (int[] s : new int[][] {{300, 70, 45}, {40, 290, 33}, {9, 6, 8209}}) {
                int M = s[0], N = s[1], K = s[2];
                for (boolean tA : new boolean[] {false, true}) {
                    for (boolean tB : new boolean[] {false, true}) {
                        for (float[] ab : new float[][] {{1f, 0f}, {0.5f, 1f}, {1f, 1f}}) {
                            check(be, r, M, N, K, tA, tB, ab[0], ab[1], false);
                        }
                    }
                }
                check(be, r, M, N, K, false, true, 1f, 0f, true); // a linear layer with its bias
            }
        }
    }

    /** One product at offsets with leading dimensions past the logical width, against float64 on the rounded operands. */
    private static void check(Backend be, Random r, int M, int N, int K, boolean tA, boolean tB, float alpha, float beta,
                              boolean bias) {
        int aRows = tA ? K : M, aCols = tA ? M : K, lda = aCols + 3, bRows = tB ? N : K, bCols = tB ? K : N, ldb = bCols + 5,
                ldc = N + 2, aOff = 7, bOff = 11, cOff = 5;
        float[] a = random(r, aOff + aRows * lda), b = random(r, bOff + bRows * ldb), c = random(r, cOff + M * ldc),
                bs = random(r, N);
        Tensor A = be.alloc("A", a.length), B = be.alloc("B", b.length), C = be.alloc("C", c.length), Bias = be.alloc("bias", N);
        be.upload(A, a);
        be.upload(B, b);
        be.upload(C, c);
        be.upload(Bias, bs);
        be.gemm(new Gemm(M, N, K, alpha, new Mat(A, aOff, lda, tA), new Mat(B, bOff, ldb, tB), beta, new Mat(C, cOff, ldc, false),
                bias ? Bias : null));
        float[] got = new float[c.length];
        be.download(C, got);
        double worst = 0;
        for (int i = 0; i < M; i++) {
            for (int j = 0; j < N; j++) {
                double acc = 0, mag = 0;
                for (int k = 0; k < K; k++) {
                    double x = bf(a[aOff + (tA ? k * lda + i : i * lda + k)]), y = bf(b[bOff + (tB ? j * ldb + k : k * ldb + j)]);
                    acc += x * y;
                    mag += Math.abs(x * y);
                }
                double old = c[cOff + i * ldc + j];
                double want = bias ? bs[j] + acc : alpha * acc + (beta == 0 ? 0 : beta * old);
                double tol = 1e-6 * (Math.abs(alpha) * mag + Math.abs(beta * old) + (bias ? Math.abs(bs[j]) : 0)) + 1e-6;
                double err = Math.abs(got[cOff + i * ldc + j] - want);
                assertTrue(err <= tol, String.format("M %d N %d K %d tA %s tB %s alpha %s beta %s bias %s: C[%d,%d] = %s, float64 of "
                        + "the bf16 operands %s (error %.3g > %.3g)", M, N, K, tA, tB, alpha, beta, bias, i, j, got[cOff + i * ldc + j],
                        want, err, tol));
                worst = Math.max(worst, err / tol);
            }
        }
        // the padding between rows and before the offset is not written
        for (int i = 0; i < cOff; i++) {
            assertEquals(c[i], got[i], "C before its offset");
        }
        for (int i = 0; i < M; i++) {
            assertEquals(c[cOff + i * ldc + N], got[cOff + i * ldc + N], "C's padding after row " + i);
        }
        for (Tensor t : new Tensor[] {A, B, C, Bias}) {
            t.close();
        }
    }

    @Test
    void theProductsReallyRunOnBf16OperandsAndRepeatBitForBit() {
        int M = 256, N = 192, K = 200;
        Random r = new Random(5);
        float[] a = random(r, M * K), b = random(r, K * N);
        float[] f32 = product(new CpuBackend(2, true), a, b, M, N, K);
        float[] bf1, bf2;
        try (CpuBackend be = bf16Backend(2)) {
            bf1 = product(be, a, b, M, N, K);
            bf2 = product(be, a, b, M, N, K);
        }
        assertArrayEquals(bf1, bf2, "same operands, same threads: same bits");
        double maxDiff = 0;
        for (int i = 0; i < f32.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(bf1[i] - f32[i]));
        }
        // bf16 keeps 8 bits of mantissa (relative rounding up to 2^-9 per operand): with sums of 200 standard normal
        // products (magnitude ~14) the products differ from float32's by a few hundredths, never by float32's 1e-6
        assertTrue(maxDiff > 1e-3 && maxDiff < 0.5, "max difference to float32 " + maxDiff);
    }

    private static float[] product(CpuBackend be, float[] a, float[] b, int M, int N, int K) {
        Tensor A = be.alloc("A", a.length), B = be.alloc("B", b.length), C = be.alloc("C", M * N);
        be.upload(A, a);
        be.upload(B, b);
        be.gemm(new Gemm(M, N, K, 1f, Mat.of(A, K), Mat.of(B, N), 0f, Mat.of(C, N), null));
        float[] c = new float[M * N];
        be.download(C, c);
        if (be.precision() == Precision.FP32) {
            be.close();
        }
        return c;
    }

    @Test
    void theHeadLossWithItsPinnedWeightMatchesFloat32WithinBf16Rounding() {
        int N = 300, C = 64, V = 1000, chunk = 128;
        Random r = new Random(9);
        float[] x = random(r, N * C), w = random(r, V * C);
        for (int i = 0; i < w.length; i++) {
            w[i] *= 0.2f;
        }
        int[] targets = new int[N];
        for (int i = 0; i < N; i++) {
            targets[i] = i % 17 == 0 ? -1 : r.nextInt(V);
        }
        double[] loss = new double[2];
        float[][] dx = new float[2][N * C], dw = new float[2][V * C];
        for (int p = 0; p < 2; p++) {
            try (CpuBackend be = p == 0 ? new CpuBackend(2, true) : bf16Backend(2)) {
                Tensor X = be.alloc("x", N * C), W = be.alloc("w", V * C), G = be.alloc("g", V * C), L = be.alloc("logits", chunk * V),
                        DX = be.alloc("dx", N * C);
                be.upload(X, x);
                be.upload(W, w);
                loss[p] = be.headLoss(new LmHead(W, G, C, V, L, chunk), X, targets, N, 1f / N, DX);
                be.download(DX, dx[p]);
                be.download(G, dw[p]);
            }
        }
        assertEquals(loss[0], loss[1], 2e-3 * Math.abs(loss[0]), "bf16 head loss against float32");
        assertClose(dx[0], dx[1], 2e-2, "dx");
        assertClose(dw[0], dw[1], 2e-2, "dW");
    }

    private static void assertClose(float[] want, float[] got, double rel, String what) {
        double scale = 0, err = 0;
        for (int i = 0; i < want.length; i++) {
            scale = Math.max(scale, Math.abs(want[i]));
            err = Math.max(err, Math.abs(want[i] - got[i]));
        }
        assertTrue(err <= rel * scale && err > 0, what + ": max error " + err + " against max |value| " + scale);
    }

    @Test
    void backendsWithoutBf16RefuseItNamingTheOneThatHasIt() {
        try (Backend be = new JavaBackend()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> be.usePrecision(Precision.BF16));
            assertTrue(e.getMessage().contains("java backend computes in float32 only") && e.getMessage().contains("--backend cpu"),
                    e.getMessage());
            be.usePrecision(Precision.FP32);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Precision.parse("fp16"));
        assertTrue(e.getMessage().contains("'fp16'") && e.getMessage().contains("fp32 or bf16"), e.getMessage());
        assertEquals(Precision.BF16, Precision.parse(" BF16 "));
    }
}
