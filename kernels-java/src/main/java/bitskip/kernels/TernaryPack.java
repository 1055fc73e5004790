package bitskip.kernels;

/**
 * Packings of ternary weight codes (-1, 0, +1) of a row-major (OC, C) matrix, for the deployable model.
 *
 * <ul>
 *   <li><b>i2_g128</b> (2 bits per weight, the layout of the packed GEMV): each row is zero-padded to a
 *       multiple of 128 columns and stored as {@code C128/4} bytes (rows padded to whole bytes, row-major).
 *       A 2-bit field holds a code in two's complement: 00 = 0, 01 = +1, 11 = -1 (10 is invalid). Within
 *       the group g of 128 columns (32 bytes), read the 32 bytes as 16 little-endian 16-bit words w_i
 *       (byte 2i low, byte 2i+1 high); field p (bits 2p, 2p+1 of w_i, p = 0..7) holds column
 *       {@code 128g + 16p + i}. So one shift pair applied to all 16 words yields 16 consecutive columns:
 *       a 256-bit vector unit decodes a whole group with 8 shift pairs and no shuffles.</li>
 *   <li><b>tq1_5</b> (base 3, five weights per byte, 1.6 bits per weight): row-major, each row padded to
 *       {@code ceil(C/5)} bytes; byte j of a row is {@code Σ_{i<5} (code[5j+i] + 1)·3^i} (0..242), codes
 *       beyond C being 0.</li>
 * </ul>
 * Unpacking either gives back the codes exactly; an invalid field (10 in i2, a byte above 242 in tq1) is
 * refused with its position.
 */
public final class TernaryPack {
    private TernaryPack() {}

    /** Columns per group of the i2_g128 layout. */
    public static final int GROUP = 128;

    /** Columns of a row after padding to whole groups. */
    public static int i2PaddedCols(int C) {
        Check.positive("C", C);
        return (C + GROUP - 1) / GROUP * GROUP;
    }

    /** Bytes per row of the i2_g128 layout. */
    public static int i2RowBytes(int C) {
        return i2PaddedCols(C) / 4;
    }

    /** Bytes per row of the tq1_5 layout. */
    public static int tq1RowBytes(int C) {
        Check.positive("C", C);
        return (C + 4) / 5;
    }

    /** Byte offset (within a row) and bit shift (within the byte) of column c in the i2_g128 layout. */
    static int i2Byte(int c) {
        int g = c / GROUP;
        int r = c % GROUP;
        int p = r / 16;
        int i = r % 16;
        // field p of word i: bits 2p..2p+1 of the 16-bit word; p < 4 lives in the low byte 2i
        return g * 32 + 2 * i + (p >= 4 ? 1 : 0);
    }

    static int i2Shift(int c) {
        int p = (c % GROUP) / 16;
        return 2 * (p % 4);
    }

    /** Overwrites packed (OC * i2RowBytes(C)) with the codes (OC, C) in the i2_g128 layout. */
    public static void packI2(byte[] packed, byte[] codes, int OC, int C) {
        Check.positive("OC", OC, "C", C);
        Check.len(codes, "codes", (long) OC * C, "OC*C");
        int rb = i2RowBytes(C);
        Check.len(packed, "packed", (long) OC * rb, "OC*i2RowBytes(C)");
        for (int i = 0; i < OC * rb; i++) {
            packed[i] = 0;
        }
        for (int o = 0; o < OC; o++) {
            for (int c = 0; c < C; c++) {
                int code = codes[o * C + c];
                if (code < -1 || code > 1) { // the message built only on failure: this loop runs per weight
                    Check.arg(false, "codes[" + (o * C + c) + "]", code, "must be -1, 0 or +1");
                }
                int field = code & 3; // two's complement in 2 bits: 0 -> 00, 1 -> 01, -1 -> 11
                int at = o * rb + i2Byte(c);
                packed[at] = (byte) (packed[at] | (field << i2Shift(c)));
            }
        }
    }

    /** Overwrites codes (OC, C) from packed in the i2_g128 layout. */
    public static void unpackI2(byte[] codes, byte[] packed, int OC, int C) {
        Check.positive("OC", OC, "C", C);
        Check.len(codes, "codes", (long) OC * C, "OC*C");
        int rb = i2RowBytes(C);
        Check.len(packed, "packed", (long) OC * rb, "OC*i2RowBytes(C)");
        for (int o = 0; o < OC; o++) {
            for (int c = 0; c < C; c++) {
                int field = (packed[o * rb + i2Byte(c)] >> i2Shift(c)) & 3;
                if (field == 2) {
                    Check.arg(false, "packed field of row " + o + " column " + c, field, "10 is not a ternary code");
                }
                codes[o * C + c] = (byte) (field == 3 ? -1 : field);
            }
        }
    }

    /** Overwrites packed (OC * tq1RowBytes(C)) with the codes in the tq1_5 layout (base 3, five per byte). */
    public static void packTq1(byte[] packed, byte[] codes, int OC, int C) {
        Check.positive("OC", OC, "C", C);
        Check.len(codes, "codes", (long) OC * C, "OC*C");
        int rb = tq1RowBytes(C);
        Check.len(packed, "packed", (long) OC * rb, "OC*tq1RowBytes(C)");
        for (int o = 0; o < OC; o++) {
            for (int j = 0; j < rb; j++) {
                int v = 0;
                // Horner from the fifth digit down: v = Σ (code+1)·3^i
                for (int i = 4; i >= 0; i--) {
                    int c = 5 * j + i;
                    int code = c < C ? codes[o * C + c] : 0;
                    if (code < -1 || code > 1) {
                        Check.arg(false, "codes[" + (o * C + c) + "]", code, "must be -1, 0 or +1");
                    }
                    v = v * 3 + code + 1;
                }
                packed[o * rb + j] = (byte) v;
            }
        }
    }

    /** Overwrites codes (OC, C) from packed in the tq1_5 layout. */
    public static void unpackTq1(byte[] codes, byte[] packed, int OC, int C) {
        Check.positive("OC", OC, "C", C);
        Check.len(codes, "codes", (long) OC * C, "OC*C");
        int rb = tq1RowBytes(C);
        Check.len(packed, "packed", (long) OC * rb, "OC*tq1RowBytes(C)");
        for (int o = 0; o < OC; o++) {
            for (int j = 0; j < rb; j++) {
                int v = packed[o * rb + j] & 255;
                if (v > 242) {
                    Check.arg(false, "packed byte of row " + o + " at " + j, v, "must be at most 242 (3^5 - 1)");
                }
                for (int i = 0; i < 5; i++) {
                    int c = 5 * j + i;
                    if (c < C) {
                        codes[o * C + c] = (byte) (v % 3 - 1);
                    }
                    v = v / 3;
                }
            }
        }
    }
}
