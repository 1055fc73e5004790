package bitskip.model.infer;

import bitskip.kernels.Quantize;
import bitskip.kernels.TernaryPack;

/**
 * One deployed quantized projection: its ternary codes packed in the i2_g128 layout, one alpha for the
 * matrix, and (H-BitLinear) the LayerNorm gain and bias of its Hadamard path. The weight is (OC, P): P is
 * the padded width of the rotated basis under H-BitLinear, the input width otherwise.
 */
public final class TernaryLinear {
    public final String name;
    /** Input width (before the Hadamard padding). */
    public final int in;
    /** Columns of the weight: nextPow2(in) under H-BitLinear, else in. */
    public final int P;
    public final int OC;
    /** P padded to whole groups of 128 columns: the row length of the packed layout and of the codes. */
    public final int Cp;
    public final float alpha;
    /** OC rows of Cp/4 bytes, i2_g128. */
    public final byte[] packed;
    public final float[] lnWeight, lnBias;

    public TernaryLinear(String name, int in, int P, int OC, float alpha, byte[] packed, float[] lnWeight,
                         float[] lnBias) {
        this.name = name;
        this.in = in;
        this.P = P;
        this.OC = OC;
        this.Cp = TernaryPack.i2PaddedCols(P);
        if (packed.length != OC * TernaryPack.i2RowBytes(P)) {
            throw new IllegalArgumentException(name + ": packed codes hold " + packed.length + " bytes, expected "
                    + OC * TernaryPack.i2RowBytes(P) + " (" + OC + " rows of " + P + " columns, i2_g128)");
        }
        this.alpha = alpha;
        this.packed = packed;
        this.lnWeight = lnWeight;
        this.lnBias = lnBias;
        // built at load (not in the first token), and only where the lookup kernel runs: it is memory the
        // i2_g128 kernel never reads
        this.lut = PackedGemm.LOOKUP ? TernaryLut.fromI2(packed, OC, P) : null;
    }

    /** Quantizes a full-precision (OC, P) weight exactly as training does (Quantize.ternaryForward). */
    public static TernaryLinear quantize(String name, int in, int P, int OC, float[] w, float[] lnWeight,
                                         float[] lnBias) {
        byte[] codes = new byte[OC * P];
        float alpha = Quantize.ternaryForward(null, codes, w, OC * P);
        return fromCodes(name, in, P, OC, alpha, codes, lnWeight, lnBias);
    }

    public static TernaryLinear fromCodes(String name, int in, int P, int OC, float alpha, byte[] codes,
                                          float[] lnWeight, float[] lnBias) {
        byte[] packed = new byte[OC * TernaryPack.i2RowBytes(P)];
        TernaryPack.packI2(packed, codes, OC, P);
        return new TernaryLinear(name, in, P, OC, alpha, packed, lnWeight, lnBias);
    }

    private final short[] lut;

    /** The codes in {@link TernaryLut}'s layout where the products run by table lookup ({@link PackedGemm#LOOKUP}), else null. */
    public short[] lut() {
        return lut;
    }

    /** The codes (OC, P), unpacked. */
    public byte[] codes() {
        byte[] codes = new byte[OC * P];
        TernaryPack.unpackI2(codes, packed, OC, P);
        return codes;
    }

    /** Bytes of packed weights. */
    public long bytes() {
        return packed.length;
    }
}
