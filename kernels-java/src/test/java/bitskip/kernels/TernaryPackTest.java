package bitskip.kernels;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;

class TernaryPackTest {

    private static byte[] randomCodes(Random r, int n) {
        byte[] codes = new byte[n];
        for (int i = 0; i < n; i++) {
            codes[i] = (byte) (r.nextInt(3) - 1);
        }
        return codes;
    }

    @Test
    void i2PackThenUnpackIsTheIdentity() {
        Random r = new Random(1);
        for (int[] shape : new int[][] {{1, 1}, {3, 5}, {7, 127}, {4, 128}, {5, 129}, {9, 512}, {2, 1000}}) {
            int OC = shape[0], C = shape[1];
            byte[] codes = randomCodes(r, OC * C);
            byte[] packed = new byte[OC * TernaryPack.i2RowBytes(C)];
            TernaryPack.packI2(packed, codes, OC, C);
            byte[] back = new byte[OC * C];
            TernaryPack.unpackI2(back, packed, OC, C);
            assertArrayEquals(codes, back, OC + "x" + C);
        }
    }

    @Test
    void tq1PackThenUnpackIsTheIdentity() {
        Random r = new Random(2);
        for (int[] shape : new int[][] {{1, 1}, {3, 5}, {7, 6}, {4, 128}, {5, 129}, {2, 1001}}) {
            int OC = shape[0], C = shape[1];
            byte[] codes = randomCodes(r, OC * C);
            byte[] packed = new byte[OC * TernaryPack.tq1RowBytes(C)];
            TernaryPack.packTq1(packed, codes, OC, C);
            byte[] back = new byte[OC * C];
            TernaryPack.unpackTq1(back, packed, OC, C);
            assertArrayEquals(codes, back, OC + "x" + C);
        }
    }

    @Test
    void sizesAreTwoBitsAndOnePointSixBitsPerWeight() {
        assertEquals(128, TernaryPack.i2RowBytes(512)); // 512 weights in 128 bytes: 2 bits each
        assertEquals(32, TernaryPack.i2RowBytes(1)); // a row is padded to one group of 128 columns
        assertEquals(103, TernaryPack.tq1RowBytes(512)); // ceil(512/5): 1.6 bits per weight
    }

    @Test
    void i2LayoutPutsSixteenConsecutiveColumnsInOneFieldOfSixteenWords() {
        // column 128g + 16p + i lives in field p of the little-endian word i of group g
        byte[] codes = new byte[256];
        codes[128 + 16 * 5 + 3] = -1; // group 1, field 5 (high byte, bits 2..3), word 3
        byte[] packed = new byte[64];
        TernaryPack.packI2(packed, codes, 1, 256);
        for (int b = 0; b < 64; b++) {
            assertEquals(b == 32 + 2 * 3 + 1 ? 0b1100 : 0, packed[b] & 255, "byte " + b);
        }
    }

    @Test
    void invalidFieldsAreRefused() {
        byte[] packed = new byte[32];
        packed[0] = 0b10;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TernaryPack.unpackI2(new byte[4], packed, 1, 4));
        assertTrue(e.getMessage().contains("row 0 column 0"), e.getMessage());
        byte[] tq = {(byte) 243};
        assertThrows(IllegalArgumentException.class, () -> TernaryPack.unpackTq1(new byte[5], tq, 1, 5));
        assertThrows(IllegalArgumentException.class, () -> TernaryPack.packI2(new byte[32], new byte[] {2}, 1, 1));
    }
}
