package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.kernels.TernaryMatmul;
import bitskip.kernels.TernaryPack;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The packed Vector API GEMM reproduces the scalar reference's int32 sums bit for bit. */
class PackedGemmTest {

    private static void check(int N, int C, int OC, boolean extreme, Parallel par, long seed) {
        Random r = new Random(seed);
        byte[] codes = new byte[OC * C], q = new byte[N * C];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (r.nextInt(3) - 1);
        }
        for (int i = 0; i < q.length; i++) {
            q[i] = (byte) (extreme ? (r.nextBoolean() ? 127 : -127) : r.nextInt(255) - 127);
        }
        if (extreme) { // the largest sums: every weight +1 against +127 in the even rows and -127 in the odd ones
            for (int c = 0; c < C; c++) {
                codes[c] = 1;
                for (int n = 0; n < N; n++) {
                    q[n * C + c] = (byte) (n % 2 == 0 ? 127 : -127);
                }
            }
        }
        int[] ref = new int[N * OC];
        TernaryMatmul.forward(ref, q, codes, N, C, OC);

        int Cp = TernaryPack.i2PaddedCols(C);
        byte[] packed = new byte[OC * TernaryPack.i2RowBytes(C)];
        TernaryPack.packI2(packed, codes, OC, C);
        short[] qs = new short[N * Cp];
        for (int n = 0; n < N; n++) {
            for (int c = 0; c < C; c++) {
                qs[n * Cp + c] = q[n * C + c];
            }
            for (int c = C; c < Cp; c++) {
                qs[n * Cp + c] = (short) (r.nextInt(255) - 127); // padding activations are ignored
            }
        }
        for (int bits : new int[] {256, 512}) { // both vector shapes, whatever this machine prefers
            int[] got = new int[N * OC];
            PackedGemm.ternary(got, qs, packed, N, Cp, OC, par, TernaryI2.wideSpecies(bits));
            assertArrayEquals(ref, got, bits + "-bit, N " + N + " C " + C + " OC " + OC);
        }
        int[] got = new int[N * OC]; // the lookup kernel, whichever decoding uses here
        PackedGemm.ternary(N, par, new PackedGemm.TernaryJob(got, qs, packed, TernaryLut.fromI2(packed, OC, C), Cp, OC, null));
        assertArrayEquals(ref, got, "lookup, N " + N + " C " + C + " OC " + OC);
    }

    @Test
    void bitExactAgainstTheScalarReference() {
        Parallel two = new Parallel(2);
        int[][] shapes = {{1, 1, 1}, {1, 32, 5}, {3, 100, 7}, {1, 128, 64}, {2, 129, 33}, {1, 512, 256},
                {4, 2048, 40}, {1, 4096, 9}, {1, 5000, 3}, {2, 8192, 17}, {3, 768, 11}, {2, 640, 6}, {1, 16384, 3},
                // rows in fours, then a pair, then one (verification's k + 1), past one flush of the 16-bit sums
                {5, 1024, 13}, {7, 16384, 3}, {9, 8448, 4}, {6, 384, 9},
                // an odd last row against weight rows in fours (decoding's one row), past a flush, on two threads too
                {1, 16384, 64}, {3, 8448, 41}};
        long seed = 0;
        for (int[] s : shapes) {
            check(s[0], s[1], s[2], false, Parallel.serial(), seed++);
            check(s[0], s[1], s[2], true, two, seed++);
        }
    }

    @Test
    void interleavePutsEachFieldsActivationsWhereTheWideLoadMeetsThem() {
        int Cp = 5 * 128, k = 2; // two whole blocks of 2 groups, one group left in place
        short[] q = new short[Cp], qi = new short[Cp];
        for (int c = 0; c < Cp; c++) {
            q[c] = (short) c;
        }
        TernaryI2.interleave(qi, q, 1, Cp, k);
        // block 1, field 3, group 1 of the block (group 3 overall), word 5: column 3·128 + 16·3 + 5
        assertEquals(3 * 128 + 48 + 5, qi[256 + 3 * 32 + 16 + 5]);
        assertEquals(0, qi[0]);
        assertEquals(128, qi[16], "lanes 16..31 of field 0 are group 1's words");
        assertEquals(16, qi[32], "field 1 of group 0 follows");
        for (int c = 512; c < Cp; c++) {
            assertEquals(c, qi[c], "the tail group stays in place");
        }
        assertThrows(IllegalArgumentException.class, () -> TernaryI2.wideSpecies(128));
    }

    @Test
    void threadedDenseEqualsSerialDense() {
        Random r = new Random(9);
        int N = 5, C = 77, OC = 1000;
        float[] x = new float[5 + N * C], w = new float[OC * C];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        float[] a = new float[N * OC], b = new float[N * OC], one = new float[OC];
        PackedGemm.dense(a, x, 5, w, N, C, OC, Parallel.serial());
        PackedGemm.dense(b, x, 5, w, N, C, OC, new Parallel(2));
        assertArrayEquals(a, b);
        // rows go in pairs and an odd last row alone: every one of them equals that row computed by itself
        for (int n = 0; n < N; n++) {
            PackedGemm.dense(one, x, 5 + n * C, w, 1, C, OC, Parallel.serial());
            for (int o = 0; o < OC; o++) {
                assertEquals(a[n * OC + o], one[o], "row " + n + " does not depend on the batch");
                double ref = 0;
                for (int c = 0; c < C; c++) {
                    ref += (double) x[5 + n * C + c] * w[o * C + c];
                }
                assertEquals(ref, one[o], 1e-4);
            }
        }
    }

    @Test
    void severalProductsInOneCallEqualEachAloneAndEachEpilogueSeesItsRowsOnce() {
        severalProducts(false);
        severalProducts(true);
    }

    private static void severalProducts(boolean lookup) {
        Random r = new Random(11);
        int N = 2;
        int[][] shapes = {{512, 512}, {512, 256}, {384, 1000}}; // (Cp, OC): a chunk may straddle two products
        PackedGemm.TernaryJob[] jobs = new PackedGemm.TernaryJob[shapes.length];
        int[][] alone = new int[shapes.length][], seen = new int[shapes.length][];
        for (int j = 0; j < shapes.length; j++) {
            int Cp = shapes[j][0], OC = shapes[j][1];
            byte[] codes = new byte[OC * Cp], packed = new byte[OC * TernaryPack.i2RowBytes(Cp)];
            for (int i = 0; i < codes.length; i++) {
                codes[i] = (byte) (r.nextInt(3) - 1);
            }
            TernaryPack.packI2(packed, codes, OC, Cp);
            short[] q = new short[N * Cp];
            for (int i = 0; i < q.length; i++) {
                q[i] = (short) (r.nextInt(255) - 127);
            }
            alone[j] = new int[N * OC];
            PackedGemm.ternary(alone[j], q, packed, N, Cp, OC, Parallel.serial());
            int[] count = seen[j] = new int[OC];
            jobs[j] = new PackedGemm.TernaryJob(new int[N * OC], q, packed, lookup ? TernaryLut.fromI2(packed, OC, Cp) : null, Cp, OC, (from, to) -> {
                for (int o = from; o < to; o++) {
                    count[o]++;
                }
            });
        }
        PackedGemm.ternary(N, new Parallel(2), jobs);
        for (int j = 0; j < shapes.length; j++) {
            assertArrayEquals(alone[j], jobs[j].acc(), "product " + j + (lookup ? ", lookup" : ""));
            for (int o = 0; o < shapes[j][1]; o++) {
                assertEquals(1, seen[j][o], "product " + j + " row " + o + " epilogue calls" + (lookup ? ", lookup" : ""));
            }
        }
    }

    @Test
    void theLookupKernelRefusesCodesItCannotSumExactly() {
        byte[] codes = {1, 0, -1, 2};
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> TernaryLut.pack(codes, 1, 4, 128));
        assertTrue(bad.getMessage().contains("ternary code 2 at row 0, column 3"), bad.getMessage());
        short[] q = new short[128];
        q[5] = 128;
        IllegalArgumentException big = assertThrows(IllegalArgumentException.class,
                () -> TernaryLut.tables(new short[TernaryLut.tableShorts(1, 128)], q, 1, 128));
        assertTrue(big.getMessage().contains("activation code 128 at column 5"), big.getMessage());
        short[] q2 = new short[256]; // the culprit past the first vector of codes, in the second row
        q2[128 + 100] = -128;
        IllegalArgumentException late = assertThrows(IllegalArgumentException.class,
                () -> TernaryLut.tables(new short[TernaryLut.tableShorts(2, 128)], q2, 2, 128));
        assertTrue(late.getMessage().contains("activation code -128 at column 100"), late.getMessage());
    }
}
