package bitskip.engine;

import bitskip.engine.cpu.CpuBackend;
import bitskip.engine.opencl.OpenCLBackend;
import bitskip.engine.opencl.OpenCLDevices;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
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
        // Lives in the engine-tornado module (Java 25, built where TornadoVM is installed): loaded by name.
        KNOWN.put("tornado", () -> (Backend) tornado("TornadoBackend", "create", null));
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
     * vector path), each OpenCL device twice, with its fp64 accumulators (where it has fp64) and with the
     * float-only kernels, and in a JVM that runs TornadoVM each TornadoVM device; an absent backend with the
     * reason.
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
        // TornadoVM's devices where this JVM runs TornadoVM (engine-tornado's tests, the GPU bundle's TornadoVM
        // run, ./bitskip with TORNADOVM_HOME); other JVMs leave them out rather than list them as absent, since
        // the tornado backend is never expected to run there (engine-tornado's tests require it where it is).
        if (tornadoUnavailableReason() == null) {
            @SuppressWarnings("unchecked")
            List<Target> tornado = (List<Target>) tornado("TornadoDevices", "targets", null);
            out.addAll(tornado);
        }
        return out;
    }

    private static final String TORNADO_PACKAGE = "bitskip.engine.tornado";

    /** What the tornado backend needs to run that this JVM lacks, or null when it can run. */
    public static String tornadoUnavailableReason() {
        try {
            Class.forName(TORNADO_PACKAGE + ".TornadoBackend");
        } catch (ClassNotFoundException e) {
            return "the bitskip-engine-tornado jar is not on the class path (it is built where TornadoVM and a JDK 25"
                    + " are installed; ./bitskip adds it when TORNADOVM_HOME is set)";
        }
        try {
            Class.forName("uk.ac.manchester.tornado.api.TaskGraph");
        } catch (ClassNotFoundException | LinkageError e) {
            return "TornadoVM is not loaded in this JVM: start it with TornadoVM's flags (the tornado launcher, or"
                    + " java @$TORNADOVM_HOME/tornado-argfile ...)";
        }
        return null;
    }

    /** TornadoVM's devices with the ids to pass to --device, or why the tornado backend cannot run here. */
    public static void printTornadoDevices(PrintStream out) {
        String why = tornadoUnavailableReason();
        if (why != null) {
            out.println("tornado  (none)  " + why);
            return;
        }
        tornado("TornadoDevices", "print", out);
    }

    /** Calls a static method of an engine-tornado class, with a clear error when the module cannot load. */
    private static Object tornado(String cls, String method, PrintStream arg) {
        String why = tornadoUnavailableReason();
        if (why != null) {
            throw new IllegalStateException("backend 'tornado' cannot start: " + why);
        }
        try {
            Class<?> c = Class.forName(TORNADO_PACKAGE + "." + cls);
            return arg == null ? c.getMethod(method).invoke(null) : c.getMethod(method, PrintStream.class).invoke(null, arg);
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException("backend 'tornado': " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("backend 'tornado': " + e, e);
        }
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
