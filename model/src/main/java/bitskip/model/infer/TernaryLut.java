package bitskip.model.infer;

import bitskip.kernels.TernaryPack;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The ternary GEMV by table lookup (the T-MAC / bitnet.cpp "TL" idea, in 16-bit lanes): three ternary weights of a
 * row take 27 values, so their contribution Σ w_i·x_i to that row is one of 27 sums of the three activations. Per
 * triple of columns the 27 sums form a table of 32 shorts, one 512-bit register, and a vector of 32 rows' 5-bit
 * indices looks all 32 contributions up in one permute ({@code selectFrom}, vpermw with AVX-512BW) and one add: 96
 * weights per lookup where the i2_g128 kernel of {@link PackedGemm} decodes and multiplies 32 per four operations.
 * <p>
 * Layout (built in memory from the i2_g128 codes at load; the deployable file is unchanged): rows in blocks of 32,
 * one 16-bit word per row for each 9 columns (three 5-bit indices, index = 9·(w0+1) + 3·(w1+1) + (w2+1), low
 * field first), the 32 rows' words for one word position in 32 consecutive shorts (one vector). The columns are cut
 * into tiles of {@value #TILE_WORDS} words (504 columns) and the layout is tile-major: tile, block, word, row. A
 * thread walks its blocks tile by tile, so a tile's tables (10.7 KB) stay in the L1 cache while its weights stream
 * by in one contiguous run; with block-major order every block re-read all tables of the row (350 KB at 16384
 * columns) from L2, three table bytes per weight byte (16384², 2 threads: 20 against 31–37 GB/s). Within a block
 * row r sits in lane 2r (r &lt; 16) or 2(r − 16) + 1: read as int lanes, the low halves are rows 0..15 and the high
 * halves rows 16..31, in order, so the 16-bit sums widen with shifts instead of a shape conversion. 1.78 bits per
 * weight.
 * <p>
 * Exactness: with |x| ≤ 127 a table entry is at most 381 in magnitude, so a 16-bit lane takes {@value #FLUSH_WORDS}
 * words (three lookups each, 32004 &lt; 2^15) before it is added into 32-bit sums: every result is the exact int32
 * dot product, the same bits as the reference and as {@link PackedGemm#ternary}.
 * <p>
 * Speed: the permute is intrinsified on JDK 25 (one core, a 4096² matrix from L3: 41 GB/s of this layout against
 * 14 GB/s for the i2_g128 kernel), not on JDK 17, where {@code selectFrom} builds a shuffle through a slow path and
 * the lookup runs no faster than the i2_g128 kernel: {@link #preferred} chooses it only where it pays.
 */
final class TernaryLut {
    private TernaryLut() {}

    static final VectorSpecies<Short> S = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_512;
    /** Rows per block: one vector of 16-bit lanes. */
    static final int ROWS = 32;
    /** Columns per 16-bit word: three triples. */
    static final int WORD_COLS = 9;
    /** Table entries used per triple (3³); the table has 32. */
    private static final int ENTRIES = 27;
    /** Words (three lookups each) a 16-bit accumulator takes before it is widened: 28 · 3 · 381 = 32004 &lt; 2^15. */
    static final int FLUSH_WORDS = 28;
    /** Words per tile of the layout: two flushes. */
    static final int TILE_WORDS = 2 * FLUSH_WORDS;
    /** The largest |activation code| the flush interval allows. */
    static final int X_MAX = 127;

    /** The digit d (0 first) of every table index, minus 1: the weight of the triple's column d at that index. */
    private static final short[][] DIGITS = new short[3][S.length()];
    static {
        for (int i = 0; i < ENTRIES; i++) {
            DIGITS[0][i] = (short) (i / 9 - 1);
            DIGITS[1][i] = (short) (i / 3 % 3 - 1);
            DIGITS[2][i] = (short) (i % 3 - 1);
        }
    }

    /**
     * Whether the GEMVs should use this kernel: -Dbitskip.gemv.kernel=lut or i2 decides; by default (auto) where
     * 512-bit vectors are native and the JDK is 25 or newer (the first measured with {@code selectFrom} compiled to
     * one permute; see the class comment).
     */
    static boolean preferred() {
        String k = System.getProperty("bitskip.gemv.kernel", "auto");
        switch (k) {
            case "lut":
                return true;
            case "i2":
                return false;
            case "auto":
                return nativeWidth() && Runtime.version().feature() >= 25;
            default:
                throw new IllegalArgumentException("bitskip.gemv.kernel must be auto, lut or i2, got '" + k + "'");
        }
    }

    /** Whether this machine's vectors are 512 bits wide (the permute of 32 shorts is one instruction). */
    static boolean nativeWidth() {
        return ShortVector.SPECIES_PREFERRED.vectorBitSize() >= S.vectorBitSize();
    }

    static int words(int Cp) {
        return (Cp + WORD_COLS - 1) / WORD_COLS;
    }

    /** Shorts of the tables of N activation rows of Cp columns ({@link #tables}): 3·words triples of 32 per row. */
    static int tableShorts(int N, int Cp) {
        return N * 3 * words(Cp) * ROWS;
    }

    static int blocks(int OC) {
        return (OC + ROWS - 1) / ROWS;
    }

    /** The lane of row r (0..31) of a block. */
    static int lane(int r) {
        return r < 16 ? 2 * r : 2 * (r - 16) + 1;
    }

    /** The layout of the (OC, P) codes packed as i2_g128 (rows of Cp = i2PaddedCols(P) columns). */
    static short[] fromI2(byte[] packed, int OC, int P) {
        byte[] codes = new byte[OC * P];
        TernaryPack.unpackI2(codes, packed, OC, P);
        return pack(codes, OC, P, TernaryPack.i2PaddedCols(P));
    }

    /** The layout of (OC, P) codes in {-1, 0, 1}, for activation rows of Cp ≥ P columns (the rest weigh 0). */
    static short[] pack(byte[] codes, int OC, int P, int Cp) {
        int words = words(Cp), blocks = blocks(OC);
        short[] lut = new short[blocks * words * ROWS];
        for (int o = 0; o < OC; o++) {
            for (int w = 0; w < words; w++) {
                int word = 0;
                for (int f = 0; f < 3; f++) {
                    int index = 0;
                    for (int d = 0; d < 3; d++) {
                        int c = w * WORD_COLS + 3 * f + d;
                        int code = c < P ? codes[o * P + c] : 0;
                        if (code < -1 || code > 1) {
                            throw new IllegalArgumentException("ternary code " + code + " at row " + o + ", column " + c);
                        }
                        index = 3 * index + code + 1;
                    }
                    word |= index << (5 * f);
                }
                int t = w / TILE_WORDS, tw = Math.min(TILE_WORDS, words - t * TILE_WORDS);
                lut[(t * blocks * TILE_WORDS + o / ROWS * tw + w % TILE_WORDS) * ROWS + lane(o % ROWS)] = (short) word;
            }
        }
        return lut;
    }

    /**
     * The tables of N activation rows (row n from q[n·Cp], Cp columns, |code| ≤ {@value #X_MAX}): for triple
     * t of row n, T[(n·3·words + t)·32 + i] = the sum of the triple's columns weighted by index i's digits (columns
     * past Cp count 0).
     */
    static void tables(short[] T, short[] q, int N, int Cp) {
        int words = words(Cp), triples = 3 * words;
        ShortVector d0 = ShortVector.fromArray(S, DIGITS[0], 0), d1 = ShortVector.fromArray(S, DIGITS[1], 0);
        ShortVector d2 = ShortVector.fromArray(S, DIGITS[2], 0);
        for (int n = 0; n < N; n++) {
            int row = n * Cp, tb = n * triples * ROWS;
            checkCodes(q, row, Cp);
            for (int t = 0; t < triples; t++) {
                int c = 3 * t;
                short x0 = col(q, row, c, Cp), x1 = col(q, row, c + 1, Cp), x2 = col(q, row, c + 2, Cp);
                d0.mul(x0).add(d1.mul(x1)).add(d2.mul(x2)).intoArray(T, tb + t * ROWS);
            }
        }
    }

    private static short col(short[] q, int row, int c, int Cp) {
        return c < Cp ? q[row + c] : 0;
    }

    /**
     * Refuses an activation code of the row outside ±{@value #X_MAX}, naming its column: a vector compare per 32
     * codes, the scalar scan only to name the culprit (a check per element in the table loop cost ~3% of decoding).
     */
    private static void checkCodes(short[] q, int row, int Cp) {
        int c = 0;
        for (int vb = S.loopBound(Cp); c < vb; c += S.length()) {
            ShortVector v = ShortVector.fromArray(S, q, row + c);
            if (v.compare(VectorOperators.LT, (short) -X_MAX).or(v.compare(VectorOperators.GT, (short) X_MAX)).anyTrue()) {
                break;
            }
        }
        for (; c < Cp; c++) {
            int x = q[row + c];
            if (x < -X_MAX || x > X_MAX) {
                throw new IllegalArgumentException("activation code " + x + " at column " + c
                        + " (the lookup GEMV takes |code| <= " + X_MAX + ")");
            }
        }
    }

    /** Per-thread int32 sums of the blocks a thread computes, across tiles (grow, never shrink). */
    private static final ThreadLocal<int[][]> SUMS = ThreadLocal.withInitial(() -> new int[1][0]);

    /**
     * acc[n·OC + o] = Σ_c code[o, c]·q[n, c] for the rows o of blocks [b0, b1) (rows past OC are not written), n &lt; N,
     * from the tables of {@link #tables}. Tile by tile, each block's and row's sums kept in 32 ints of a per-thread
     * buffer between tiles.
     */
    static void rows(int[] acc, short[] T, short[] lut, int N, int Cp, int OC, int b0, int b1) {
        int words = words(Cp), blocks = blocks(OC), tableRow = tableShorts(1, Cp);
        int[][] holder = SUMS.get();
        int need = (b1 - b0) * N * ROWS;
        if (holder[0].length < need) {
            holder[0] = new int[need];
        }
        int[] sums = holder[0];
        for (int t = 0, j0 = 0; j0 < words; t++, j0 += TILE_WORDS) {
            int tw = Math.min(TILE_WORDS, words - j0), tileBase = t * blocks * TILE_WORDS * ROWS;
            for (int b = b0; b < b1; b++) {
                int wb = tileBase + b * tw * ROWS;
                for (int n = 0; n < N; n++) {
                    int tb = n * tableRow + j0 * 3 * ROWS, s = ((b - b0) * N + n) * ROWS;
                    IntVector lo, hi;
                    if (t == 0) {
                        lo = IntVector.zero(I);
                        hi = lo;
                    } else {
                        lo = IntVector.fromArray(I, sums, s);
                        hi = IntVector.fromArray(I, sums, s + 16);
                    }
                    for (int f0 = 0; f0 < tw; f0 += FLUSH_WORDS) {
                        int f1 = Math.min(tw, f0 + FLUSH_WORDS);
                        ShortVector a = ShortVector.zero(S);
                        for (int j = f0; j < f1; j++) {
                            ShortVector w = ShortVector.fromArray(S, lut, wb + j * ROWS);
                            int x = tb + j * 3 * ROWS;
                            a = a.add(w.and((short) 31).selectFrom(ShortVector.fromArray(S, T, x)));
                            a = a.add(w.lanewise(VectorOperators.LSHR, 5).and((short) 31).selectFrom(ShortVector.fromArray(S, T, x + ROWS)));
                            a = a.add(w.lanewise(VectorOperators.LSHR, 10).selectFrom(ShortVector.fromArray(S, T, x + 2 * ROWS)));
                        }
                        IntVector v = a.reinterpretAsInts(); // rows 0..15 in the low halves, 16..31 in the high halves
                        lo = lo.add(v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
                        hi = hi.add(v.lanewise(VectorOperators.ASHR, 16));
                    }
                    lo.intoArray(sums, s);
                    hi.intoArray(sums, s + 16);
                }
            }
        }
        for (int b = b0; b < b1; b++) {
            for (int n = 0; n < N; n++) {
                int o = b * ROWS;
                System.arraycopy(sums, ((b - b0) * N + n) * ROWS, acc, n * OC + o, Math.min(ROWS, OC - o));
            }
        }
    }
}
