package bitskip.engine;

/**
 * The whole-tensor sums of {@link Backend#reduce}, accumulated in double (they run over millions of
 * elements, where a float running sum stops absorbing small terms). The reference sums sequentially;
 * other backends may sum in a fixed blocked or tree order and agree to a stated relative tolerance,
 * except ABS, which the ternary quantizer's alpha needs bit for bit on the CPU.
 */
public enum Reduction {
    /** Σ |a| (the ternary scale alpha is its mean). */
    ABS,
    /** Σ a² (gradient clipping). */
    SQUARES,
    /** Σ (a − b)², the float difference squared in double (the quantization loss). */
    SQUARED_DIFF
}
