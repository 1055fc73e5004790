package bitskip.kernels;

/**
 * Argument checks shared by every kernel. A kernel given inconsistent dimensions fails here, before any
 * element is touched, with a message that names the argument, the expected length and the dimensions it
 * was computed from. These checks are the host-side prologue of a kernel; the loops after them stay in
 * the subset a GPU JIT accepts (static methods, flat primitive arrays, no allocation).
 */
public final class Check {
    private Check() {}

    /** Requires every named dimension to be positive: {@code dims("B", B, "T", T)}. */
    public static void positive(Object... namesAndValues) {
        for (int i = 0; i < namesAndValues.length; i += 2) {
            int v = (Integer) namesAndValues[i + 1];
            if (v <= 0) {
                throw new IllegalArgumentException("dimension " + namesAndValues[i] + " must be positive, got " + v);
            }
        }
    }

    /** Requires {@code a.length >= expected}; {@code how} says where the expected length comes from. */
    public static void len(float[] a, String name, long expected, String how) {
        require(a == null ? -1 : a.length, name, expected, how, "float[]");
    }

    public static void len(int[] a, String name, long expected, String how) {
        require(a == null ? -1 : a.length, name, expected, how, "int[]");
    }

    public static void len(byte[] a, String name, long expected, String how) {
        require(a == null ? -1 : a.length, name, expected, how, "byte[]");
    }

    /** Requires a condition on a scalar argument, naming it in the message. */
    public static void arg(boolean ok, String name, Object value, String rule) {
        if (!ok) {
            throw new IllegalArgumentException("argument " + name + " = " + value + ": " + rule);
        }
    }

    private static void require(long actual, String name, long expected, String how, String type) {
        if (actual < 0) {
            throw new IllegalArgumentException("argument " + name + " (" + type + ") is null; expected length "
                    + expected + " (" + how + ")");
        }
        if (expected > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("argument " + name + ": required length " + expected + " (" + how
                    + ") exceeds the largest Java array");
        }
        if (actual < expected) {
            throw new IllegalArgumentException("argument " + name + " (" + type + ") has length " + actual
                    + ", expected at least " + expected + " (" + how + ")");
        }
    }
}
