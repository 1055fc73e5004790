package bitskip.engine;

import java.util.Locale;

/**
 * The number format of a backend's matrix products. {@code fp32}: float32 throughout (every backend).
 * {@code bf16}: mixed precision, the products' operands rounded to bfloat16 and multiplied with float32
 * accumulation into float32 results, where the CPU has bf16 instructions; the master weights, the optimizer
 * state, the reductions and every op other than the products stay float32 (the cpu backend only).
 */
public enum Precision {
    FP32, BF16;

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** fp32 or bf16 (any case); anything else is refused with the value. */
    public static Precision parse(String s) {
        for (Precision p : values()) {
            if (p.toString().equalsIgnoreCase(s == null ? "" : s.trim())) {
                return p;
            }
        }
        throw new IllegalArgumentException("precision '" + s + "': must be fp32 or bf16");
    }
}
