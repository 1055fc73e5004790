package bitskip.engine;

import bitskip.engine.cpu.CpuBackend;
import bitskip.engine.opencl.OpenCLBackend;
import bitskip.engine.opencl.OpenCLDevices;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Chooses the backend: the command line's {@code --backend} wins, then the system property
 * {@code bitskip.backend} (what the argument files in {@code tornado-flags/} set), then the environment
 * variable {@code BITSKIP_BACKEND}, then the default.
 */
public final class Backends {
    public static final String PROPERTY = "bitskip.backend";
    public static final String ENV = "BITSKIP_BACKEND";

    private static final Map<String, Supplier<Backend>> KNOWN = new LinkedHashMap<>();

    static {
        KNOWN.put("java", JavaBackend::new);
        KNOWN.put("cpu", bitskip.engine.cpu.CpuBackend::new);
        // the device comes from -Dbitskip.device / $BITSKIP_DEVICE (P:D or a platform name), else the first GPU
        KNOWN.put("opencl", bitskip.engine.opencl.OpenCLBackend::new);
    }

    private Backends() {}

    /** The names that can be passed to {@code --backend}. */
    public static Iterable<String> names() {
        return KNOWN.keySet();
    }

    public static String defaultName() {
        return "cpu";
    }

    /** The name that {@link #create} would use for this command-line value (which may be null). */
    public static String resolve(String flag) {
        if (flag != null && !flag.isBlank()) {
            return flag.trim();
        }
        String prop = System.getProperty(PROPERTY);
        if (prop != null && !prop.isBlank()) {
            return prop.trim();
        }
        String env = System.getenv(ENV);
        if (env != null && !env.isBlank()) {
            return env.trim();
        }
        return defaultName();
    }

    /**
     * Every backend configuration of this machine: the java reference, the cpu backend (its default threads,
     * vector path), and each OpenCL device twice, with its fp64 accumulators (where it has fp64) and with the
     * float-only kernels; an absent backend with the reason.
     */
    public static List<Target> targets() {
        List<Target> out = new ArrayList<>();
        out.add(Target.of("java", JavaBackend::new, null, true));
        out.add(CpuBackend.available() ? Target.of("cpu", CpuBackend::new, "cpu", false)
                : Target.absent("cpu", CpuBackend.unavailableReason(), "cpu"));
        List<OpenCLDevices.Device> devs = OpenCLDevices.list();
        if (devs.isEmpty()) {
            out.add(Target.absent("opencl", OpenCLDevices.unavailableReason(), "opencl"));
        }
        for (OpenCLDevices.Device d : devs) {
            String base = "opencl " + d.id();
            if (d.fp64()) {
                out.add(Target.of(base + " fp64", () -> new OpenCLBackend(d, true), "opencl", true));
            }
            out.add(Target.of(base + " fp32", () -> new OpenCLBackend(d, false), "opencl", false));
        }
        return out;
    }

    /** Creates the backend chosen by flag/property/environment/default; an unknown name lists the known ones. */
    public static Backend create(String flag) {
        String name = resolve(flag);
        Supplier<Backend> s = KNOWN.get(name);
        if (s == null) {
            throw new IllegalArgumentException("unknown backend '" + name + "'; available: "
                    + String.join(", ", KNOWN.keySet()));
        }
        return s.get();
    }
}
