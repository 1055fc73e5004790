package bitskip.engine;

import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * What a test run requires to be present, so that a missing backend or data set fails the run instead of
 * skipping its tests: {@code -Dbitskip.require=cpu,opencl,data} (or {@code $BITSKIP_REQUIRE}). CI sets it;
 * on a developer's machine nothing is required and tests that cannot run are skipped with their reason.
 *
 * <p>Tests ask {@link #skipOrFail}: it returns the reason to skip, or throws when the thing is required.
 */
public final class Requirements {
    public static final String PROPERTY = "bitskip.require";
    public static final String ENV = "BITSKIP_REQUIRE";
    /**
     * The names that can be required: the backends, the real WikiText-2 files ("data"), and a two-executor Spark
     * local-cluster ("spark", the spark module's tests), the cpu backend's precision bf16 ("bf16": oneDNN and a CPU
     * with bf16 instructions), and the int8 LM head's products on oneDNN ("int8": a CPU with VNNI or AMX).
     */
    public static final List<String> KNOWN = List.of("cpu", "opencl", "tornado", "data", "spark", "bf16", "int8");

    private Requirements() {}

    /** The required names, from the system property, else the environment; an unknown name is an error. */
    public static Set<String> required() {
        String spec = System.getProperty(PROPERTY);
        String source = "-D" + PROPERTY;
        if (spec == null || spec.isBlank()) {
            spec = System.getenv(ENV);
            source = "$" + ENV;
        }
        Set<String> out = new LinkedHashSet<>();
        if (spec == null || spec.isBlank()) {
            return out;
        }
        for (String s : spec.split(",")) {
            String name = s.trim();
            if (name.isEmpty()) {
                continue;
            }
            if (!KNOWN.contains(name)) {
                throw new IllegalArgumentException(source + "=" + spec + ": unknown requirement '" + name
                        + "'; known: " + String.join(", ", KNOWN));
            }
            out.add(name);
        }
        return out;
    }

    public static boolean isRequired(String name) {
        return required().contains(name);
    }

    /**
     * For a test that needs {@code name}: empty when it is available ({@code unavailableReason} null); the
     * reason to skip when it is not and nothing requires it; an {@link AssertionError} naming it and the
     * reason when it is required.
     */
    public static Optional<String> skipOrFail(String name, String unavailableReason) {
        if (!KNOWN.contains(name)) {
            throw new IllegalArgumentException("unknown requirement '" + name + "'; known: " + String.join(", ", KNOWN));
        }
        if (unavailableReason == null) {
            return Optional.empty();
        }
        if (isRequired(name)) {
            throw new AssertionError(name + " is required (" + PROPERTY + "=" + String.join(",", required())
                    + ") but cannot run here: " + unavailableReason);
        }
        return Optional.of(unavailableReason);
    }
}
