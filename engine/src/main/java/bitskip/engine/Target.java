package bitskip.engine;

import java.util.function.Supplier;

/**
 * A backend configuration present on this machine, or absent with the reason: what the equivalence harness
 * and the portability benchmark run on. {@code requirement} is its name for {@link Requirements} ("cpu",
 * "opencl"); {@code referenceOrder} says it reproduces the reference's float operation order (the reference's
 * double expressions in double), so that its element-wise results are expected bit for bit.
 */
public record Target(String label, Supplier<Backend> open, String unavailable, String requirement,
                     boolean referenceOrder) {

    public static Target of(String label, Supplier<Backend> open, String requirement, boolean referenceOrder) {
        return new Target(label, open, null, requirement, referenceOrder);
    }

    public static Target absent(String label, String why, String requirement) {
        return new Target(label, null, why, requirement, false);
    }

    public boolean present() {
        return open != null;
    }
}
