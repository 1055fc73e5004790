package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.Requirements;
import bitskip.engine.cpu.DnnlInt8;
import bitskip.kernels.Int8Head;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The int8 head is the scalar reference bit for bit, exact in its integer sums, and row-independent. */
class LmHeadTest {
    static float[] gaussian(int n, double sd, long seed) {
        Random r = new Random(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * sd);
        }
        return a;
    }

    /** Skips (with the reason) a test of the oneDNN kernel where it cannot run, unless "int8" is required. */
    static void assumeKernel(LmHead.Int8Kernel kernel) {
        if (kernel == LmHead.Int8Kernel.ONEDNN) {
            Requirements.skipOrFail("int8", DnnlInt8.unavailableReason()).ifPresent(reason -> Assumptions.assumeTrue(false, reason));
        }
    }

    @ParameterizedTest
    @EnumSource(LmHead.Int8Kernel.class)
    void int8HeadEqualsTheScalarReferenceBitForBit(LmHead.Int8Kernel kernel) {
        assumeKernel(kernel);
        for (int levels : new int[] {Int8Head.X_LEVELS, Int8Head.X_LEVELS_8}) {
            equalsTheScalarReference(kernel, levels);
        }
    }

    private static void equalsTheScalarReference(LmHead.Int8Kernel kernel, int levels) {
        Parallel two = new Parallel(2);
        long seed = 1;
        for (int[] s : new int[][] {{1, 32, 67}, {2, 33, 5}, {3, 100, 40}, {5, 256, 300}, {4, 512, 129}, {1, 7, 3}, {7, 65, 31},
                {9, 256, 50}}) {
            int N = s[0], C = s[1], V = s[2];
            float[] w = gaussian(V * C, 0.05, seed++), x = gaussian(N * C, 2.0, seed++);
            x[0] = 40f; // an outlier sets the row's scale
            w[C + 1] = 0; // and a head row of zeros keeps scale 0
            for (int c = 0; c < C; c++) {
                w[C + c] = 0;
            }
            byte[] q = new byte[V * C];
            float[] scale = new float[V], ref = new float[N * V], sx = new float[N];
            Int8Head.quantize(q, scale, w, V, C);
            Int8Head.forward(ref, new int[N * C], sx, x, q, scale, N, C, V, levels);
            LmHead h = LmHead.quantize(w, V, C, levels);
            assertArrayEquals(q, h.codes());
            assertArrayEquals(scale, h.scales());
            assertEquals(0.0f, h.scales()[1], "a row of zeros");
            for (Parallel par : new Parallel[] {Parallel.serial(), two}) {
                float[] out = new float[N * V];
                LmHead fresh = LmHead.int8(h.codes(), h.scales(), V, C, levels); // oneDNN's column blocks follow the first pool
                fresh.forward(out, x, 0, N, par, kernel);
                assertArrayEquals(ref, out, kernel + " levels " + levels + " N " + N + " C " + C + " V " + V + " threads " + par.threads());
            }
            // each row alone gives the same bits as in the batch (rows go in fours, then pairs, then one in the kernel)
            for (int n = 0; n < N; n++) {
                float[] one = new float[V];
                h.forward(one, x, n * C, 1, two, kernel);
                for (int o = 0; o < V; o++) {
                    assertEquals(ref[n * V + o], one[o], "levels " + levels + " row " + n);
                }
            }
        }
    }

    @Test
    void int8KernelSumsAreExactAtTheExtremes() {
        for (int C : new int[] {64, 65, 1000, 8192}) {
            int N = 7, V = 4; // rows go in fours, then pairs, then one: every kind holds an extreme row
            byte[] w = new byte[V * C];
            short[] x = new short[N * C];
            for (int c = 0; c < C; c++) {
                w[c] = 127; // row 0: the largest positive sum against row 0 of x
                w[C + c] = -127;
                w[2 * C + c] = (byte) (c % 2 == 0 ? 127 : -127);
                w[3 * C + c] = (byte) (c % 3 - 1);
                for (int n = 0; n < N; n += 3) {
                    x[n * C + c] = PackedGemm.INT8_X_MAX;
                }
                for (int n = 1; n < N; n += 3) {
                    x[n * C + c] = -PackedGemm.INT8_X_MAX;
                }
                for (int n = 2; n < N; n += 3) {
                    x[n * C + c] = (short) (c % 2 == 0 ? PackedGemm.INT8_X_MAX : -PackedGemm.INT8_X_MAX);
                }
            }
            int[] acc = new int[N * V];
            PackedGemm.int8(acc, x, w, N, C, V, new Parallel(2));
            assertExact(acc, w, x, N, C, V, "java C " + C);
            assertEquals(127L * PackedGemm.INT8_X_MAX * C, acc[0]);
            if (DnnlInt8.unavailableReason() == null) {
                // the same extremes on oneDNN: x = 4·hi + lo with hi at -65 and 64, every part
                DnnlInt8 d = new DnnlInt8(w, V, C, 3, DnnlInt8.X_MAX);
                int[] acc2 = new int[N * V];
                for (int p = 0; p < d.parts(); p++) {
                    d.run(p, acc2, x, N);
                }
                assertExact(acc2, w, x, N, C, V, "onednn C " + C);
                // and 8-bit codes at ±127, which go to oneDNN as they are
                short[] x8 = new short[x.length];
                for (int i = 0; i < x8.length; i++) {
                    x8[i] = (short) (127 * Integer.signum(x[i]));
                }
                DnnlInt8 d8 = new DnnlInt8(w, V, C, 3, 127);
                int[] acc8 = new int[N * V];
                for (int p = 0; p < d8.parts(); p++) {
                    d8.run(p, acc8, x8, N);
                }
                assertExact(acc8, w, x8, N, C, V, "onednn 8-bit C " + C);
                assertEquals(127L * 127 * C, acc8[0]);
            }
        }
    }

    @Test
    void oneDnnInt8SumsAreExactOverManyRowsAndOddShapes() {
        assumeKernel(LmHead.Int8Kernel.ONEDNN);
        Random r = new Random(11);
        for (int[] s : new int[][] {{1, 1, 1}, {70, 33, 101}, {5, 256, 50257 / 64}, {2, 8191, 3}}) {
            int N = s[0], C = s[1], V = s[2];
            byte[] w = new byte[V * C];
            for (int i = 0; i < w.length; i++) {
                w[i] = (byte) (r.nextInt(255) - 127);
            }
            for (int xMax : new int[] {PackedGemm.INT8_X_MAX, 127}) { // two source rows per row of codes, or one
                short[] x = new short[N * C];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (short) (r.nextInt(2 * xMax + 1) - xMax);
                }
                for (int parts : new int[] {1, 2, 7}) {
                    DnnlInt8 d = new DnnlInt8(w, V, C, parts, xMax);
                    assertEquals(Math.min(parts, V), d.parts());
                    int[] acc = new int[N * V];
                    for (int p = d.parts() - 1; p >= 0; p--) {
                        d.run(p, acc, x, N);
                    }
                    assertExact(acc, w, x, N, C, V, "N " + N + " C " + C + " V " + V + " parts " + parts + " codes to " + xMax);
                }
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new DnnlInt8(new byte[5], 2, 3, 1, 127));
        assertEquals("int8 weights of 5 bytes for 2 x 3 in 1 parts", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new DnnlInt8(new byte[6], 2, 3, 1, DnnlInt8.X_MAX + 1));
        assertEquals("activation codes up to 512 (int8 products on oneDNN take 1..511)", e.getMessage());
    }

    private static void assertExact(int[] acc, byte[] w, short[] x, int N, int C, int V, String what) {
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < V; o++) {
                long want = 0;
                for (int c = 0; c < C; c++) {
                    want += (long) w[o * C + c] * x[n * C + c];
                }
                assertEquals(want, acc[n * V + o], what + " row " + n + " head row " + o);
            }
        }
    }

    @Test
    void aSubsetOfRowsComputesTheSameLogitsAsTheFullHead() {
        int V = 300, C = 64, N = 3;
        float[] w = gaussian(V * C, 0.1, 7), x = gaussian(N * C, 1.0, 8);
        int[] ids = {0, 5, 6, 77, 150, 299};
        for (LmHead.Format f : LmHead.Format.values()) {
            LmHead full = LmHead.f32(w, V, C).as(f), sub = full.rows(ids);
            assertEquals(f, sub.format);
            float[] a = new float[N * V], b = new float[N * ids.length];
            full.forward(a, x, 0, N, new Parallel(2));
            sub.forward(b, x, 0, N, Parallel.serial());
            for (int n = 0; n < N; n++) {
                for (int i = 0; i < ids.length; i++) {
                    assertEquals(a[n * V + ids[i]], b[n * ids.length + i], f + " row " + n + " id " + ids[i]);
                }
            }
            assertEquals(f == LmHead.Format.F32 ? 4L * ids.length * C : (long) ids.length * C + 4L * ids.length, sub.bytes());
        }
        LmHead h = LmHead.f32(w, V, C);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> h.rows(new int[] {3, 3}));
        assertEquals("head row ids must be ascending and in [0, 300), got 3 at index 1", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> h.rows(new int[] {300}));
        assertThrows(IllegalArgumentException.class, () -> h.as(LmHead.Format.INT8).as(LmHead.Format.F32));
    }

    @Test
    void int8WeightsAreWithinHalfAStepOfTheFloatOnes() {
        int V = 50, C = 96;
        float[] w = gaussian(V * C, 0.2, 3);
        LmHead h = LmHead.quantize(w, V, C, LmHead.X_LEVELS);
        for (int o = 0; o < V; o++) {
            float max = 0;
            for (int c = 0; c < C; c++) {
                max = Math.max(max, Math.abs(w[o * C + c]));
            }
            assertEquals(max / 127, h.scales()[o], 0.0f);
            for (int c = 0; c < C; c++) {
                float err = Math.abs(h.codes()[o * C + c] * h.scales()[o] - w[o * C + c]);
                assertTrue(err <= 0.5001f * h.scales()[o], "row " + o + " col " + c + ": " + err);
            }
        }
    }
}
