package bitskip.engine.tornado;

import bitskip.engine.Target;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import uk.ac.manchester.tornado.api.TornadoRuntime;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.runtime.TornadoRuntimeProvider;

/**
 * TornadoVM's devices as this backend sees them: listing ({@code ./bitskip devices}, or {@code java … 
 * bitskip.engine.tornado.TornadoDevices}) and selection by {@code -Dbitskip.device} / {@code
 * $BITSKIP_DEVICE} / {@code --device}. A device id is {@code B:D}, TornadoVM's own numbering (driver index :
 * device index, as {@code tornado --devices} prints it); a name fragment ("pocl", "nvidia") picks the first
 * device whose name or platform contains it. Without a choice, TornadoVM's default device (0:0, or its own
 * {@code -Dtornado.device}).
 *
 * <p>Every entry into TornadoVM goes through this class first: {@link Numerics#apply} must set TornadoVM's
 * compiler options before TornadoVM reads them, which it does once, when its runtime starts.
 */
public final class TornadoDevices {
    public static final String PROPERTY = "bitskip.device";
    public static final String ENV = "BITSKIP_DEVICE";

    /** A device: its id (B:D) and what this backend needs to know of it. */
    public record Device(String id, int backend, int index, String name, String platform, String openclC, String type,
                         long globalMemBytes, long maxAllocBytes, int computeUnits, boolean fp64, TornadoDevice handle) {
        public boolean isCpu() {
            return type.equals("CPU");
        }
    }

    private static List<Device> cached;

    private TornadoDevices() {}

    /** Every device of every TornadoVM driver; throws with the reason when TornadoVM cannot start. */
    public static synchronized List<Device> list() {
        if (cached == null) {
            Numerics.apply();
            TornadoRuntime rt = TornadoRuntimeProvider.getTornadoRuntime();
            List<Device> out = new ArrayList<>();
            for (int b = 0; b < rt.getNumBackends(); b++) {
                uk.ac.manchester.tornado.api.TornadoBackend backend = rt.getBackend(b);
                for (int d = 0; d < backend.getNumDevices(); d++) {
                    TornadoDevice dev = backend.getDevice(d);
                    var phys = dev.getPhysicalDevice();
                    String info = String.valueOf(phys.getDeviceInfo());
                    out.add(new Device(b + ":" + d, b, d, phys.getDeviceName().trim(), dev.getPlatformName().trim(),
                            String.valueOf(dev.getDeviceOpenCLCVersion()).trim(), String.valueOf(dev.getDeviceType()),
                            phys.getDeviceGlobalMemorySize(), phys.getDeviceMaxAllocationSize(),
                            phys.getDeviceMaxComputeUnits(), info.contains("cl_khr_fp64"), dev));
                }
            }
            cached = List.copyOf(out);
        }
        return cached;
    }

    /**
     * The device named by spec (B:D or a name fragment); null or blank reads -Dbitskip.device, then
     * $BITSKIP_DEVICE, then takes TornadoVM's default device. An unknown device is an error listing those
     * that exist.
     */
    public static Device select(String spec) {
        String s = spec;
        if (s == null || s.isBlank()) {
            s = System.getProperty(PROPERTY);
        }
        if (s == null || s.isBlank()) {
            s = System.getenv(ENV);
        }
        List<Device> devices = list();
        if (devices.isEmpty()) {
            throw new IllegalStateException("TornadoVM found no device (is an OpenCL driver installed? 'tornado --devices')");
        }
        if (s == null || s.isBlank()) {
            TornadoDevice def = TornadoRuntimeProvider.getTornadoRuntime().getDefaultDevice();
            for (Device d : devices) {
                if (d.handle() == def) {
                    return d;
                }
            }
            return devices.get(0);
        }
        String want = s.trim();
        for (Device d : devices) {
            if (d.id().equals(want)) {
                return d;
            }
        }
        // a name: first the platforms (and OpenCL C versions: PoCL says so only there), then the device names,
        // so that "amd" finds AMD's platform before a CPU named "AMD EPYC" under another one
        String lower = want.toLowerCase(Locale.ROOT);
        for (Device d : devices) {
            if ((d.platform() + " " + d.openclC()).toLowerCase(Locale.ROOT).contains(lower)) {
                return d;
            }
        }
        for (Device d : devices) {
            if (d.name().toLowerCase(Locale.ROOT).contains(lower)) {
                return d;
            }
        }
        throw new IllegalArgumentException("no TornadoVM device '" + want + "' (--device / -D" + PROPERTY + " / $" + ENV
                + " takes B:D or a name fragment); TornadoVM's devices:" + System.lineSeparator() + listing());
    }

    /** One line per device, indented, for messages and for {@code ./bitskip devices}. */
    public static String listing() {
        StringBuilder sb = new StringBuilder();
        for (Device d : list()) {
            sb.append(String.format(Locale.ROOT, "  %-5s %-36s %-4s %4d CU %8.0f MiB global %8.0f MiB max buffer %s  %s (%s)%n",
                    d.id(), d.name(), d.type(), d.computeUnits(), d.globalMemBytes() / 1048576.0,
                    d.maxAllocBytes() / 1048576.0, d.fp64() ? "fp64" : "no fp64 (unusable)", d.platform(), d.openclC()));
        }
        return sb.toString();
    }

    /**
     * Every TornadoVM device as a target of the equivalence harness and the portability benchmark (each in
     * the reference's order of operations), or one absent target with the reason TornadoVM or a device
     * cannot be used. Called by {@code Backends.targets} by name.
     */
    public static List<Target> targets() {
        List<Target> out = new ArrayList<>();
        List<Device> devices;
        try {
            devices = list();
        } catch (RuntimeException | LinkageError e) {
            return List.of(Target.absent("tornado", "TornadoVM did not start: " + e, "tornado"));
        }
        for (Device d : devices) {
            String label = "tornado " + d.id();
            out.add(d.fp64() ? Target.of(label, () -> new TornadoBackend(d), "tornado", true)
                    : Target.absent(label, d.name() + " has no fp64 (cl_khr_fp64)", "tornado"));
        }
        if (out.isEmpty()) {
            out.add(Target.absent("tornado", "TornadoVM found no device", "tornado"));
        }
        return out;
    }

    /** Prints TornadoVM's devices with the id to pass to --device (with --backend tornado). */
    public static void print(PrintStream out) {
        out.println("TornadoVM devices (pass the id as --backend tornado --device B:D, or -Dbitskip.device=B:D):");
        out.print(listing());
    }

    public static void main(String[] args) {
        print(System.out);
    }
}
