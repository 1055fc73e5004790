package bitskip.engine.opencl;

import static org.jocl.CL.*;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.jocl.CL;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_device_id;
import org.jocl.cl_platform_id;

/**
 * Enumerates the OpenCL platforms and devices (clGetPlatformIDs, clGetDeviceIDs, clGetDeviceInfo), formats
 * them for {@code ./bitskip devices}, and resolves a device id {@code P:D} (platform index : device index).
 * A machine without an OpenCL runtime (no ICD loader, or no platform) has an empty list and says why.
 */
public final class OpenCLDevices {
    /** The system property that names the device ({@code -Dbitskip.device=0:0}). */
    public static final String PROPERTY = "bitskip.device";
    public static final String ENV = "BITSKIP_DEVICE";

    private OpenCLDevices() {}

    /** One device, with what {@code devices} prints. */
    public record Device(int platformIndex, int deviceIndex, cl_platform_id platform, cl_device_id device,
                         String platformName, String platformVendor, String vendor, String name, String type, String version,
                         int computeUnits, long globalMemBytes, long maxAllocBytes, long localMemBytes,
                         long maxWorkGroupSize, boolean fp64, boolean fp16) {
        public String id() {
            return platformIndex + ":" + deviceIndex;
        }

        /** One line: id, platform, vendor, name, and the capabilities. */
        public String describe() {
            return String.format(Locale.ROOT, "%-5s %-28s %-22s %-40s %-4s CU=%-4d mem=%6.1f GiB  wg=%-5d fp64=%-3s fp16=%s",
                    id(), clip(platformName, 28), clip(vendor, 22), clip(name, 40), type, computeUnits,
                    globalMemBytes / (1024.0 * 1024 * 1024), maxWorkGroupSize, fp64 ? "yes" : "no",
                    fp16 ? "yes" : "no");
        }
    }

    private static volatile List<Device> cached;
    private static volatile String unavailable;

    /** Every device of every platform, in platform then device order; empty if there is no OpenCL. */
    public static List<Device> list() {
        if (cached == null) {
            synchronized (OpenCLDevices.class) {
                if (cached == null) {
                    cached = enumerate();
                }
            }
        }
        return cached;
    }

    /** Why there are no devices (null when there are some, or when the list was not read yet). */
    public static String unavailableReason() {
        list();
        return unavailable;
    }

    private static List<Device> enumerate() {
        List<Device> out = new ArrayList<>();
        try {
            CL.setExceptionsEnabled(true);
            int[] np = new int[1];
            try {
                clGetPlatformIDs(0, null, np);
            } catch (org.jocl.CLException e) {
                unavailable = "no OpenCL platform (" + e.getMessage() + ")";
                return out;
            }
            if (np[0] == 0) {
                unavailable = "no OpenCL platform is installed (the ICD loader found none)";
                return out;
            }
            cl_platform_id[] platforms = new cl_platform_id[np[0]];
            clGetPlatformIDs(platforms.length, platforms, null);
            for (int p = 0; p < platforms.length; p++) {
                String pname = platformString(platforms[p], CL_PLATFORM_NAME);
                String pvendor = platformString(platforms[p], CL_PLATFORM_VENDOR);
                int[] nd = new int[1];
                try {
                    clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, null, nd);
                } catch (org.jocl.CLException e) {
                    continue; // CL_DEVICE_NOT_FOUND: a platform without devices
                }
                cl_device_id[] devs = new cl_device_id[nd[0]];
                clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, devs.length, devs, null);
                for (int d = 0; d < devs.length; d++) {
                    cl_device_id dev = devs[d];
                    String ext = deviceString(dev, CL_DEVICE_EXTENSIONS);
                    long type = deviceLong(dev, CL_DEVICE_TYPE);
                    String t = (type & CL_DEVICE_TYPE_GPU) != 0 ? "GPU"
                            : (type & CL_DEVICE_TYPE_CPU) != 0 ? "CPU"
                            : (type & CL_DEVICE_TYPE_ACCELERATOR) != 0 ? "ACC" : "OTHER";
                    out.add(new Device(p, d, platforms[p], dev, pname, pvendor, deviceString(dev, CL_DEVICE_VENDOR),
                            deviceString(dev, CL_DEVICE_NAME), t, deviceString(dev, CL_DEVICE_VERSION),
                            deviceInt(dev, CL_DEVICE_MAX_COMPUTE_UNITS), deviceLong(dev, CL_DEVICE_GLOBAL_MEM_SIZE),
                            deviceLong(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE), deviceLong(dev, CL_DEVICE_LOCAL_MEM_SIZE),
                            deviceSizeT(dev, CL_DEVICE_MAX_WORK_GROUP_SIZE), ext.contains("cl_khr_fp64"),
                            ext.contains("cl_khr_fp16")));
                }
            }
            if (out.isEmpty()) {
                unavailable = "OpenCL platforms exist but have no devices";
            }
        } catch (UnsatisfiedLinkError | NoClassDefFoundError e) {
            unavailable = "no OpenCL runtime: " + e.getMessage();
        } catch (RuntimeException e) {
            unavailable = "OpenCL enumeration failed: " + e;
        }
        return out;
    }

    /**
     * The device named by spec ("P:D"); null or blank chooses the property {@code bitskip.device}, then
     * the environment variable {@code BITSKIP_DEVICE}, then the first GPU, then the first device. A spec
     * that starts with a letter names a platform instead ({@code nvidia}, {@code pocl}, {@code nvidia:1}):
     * the first (or D-th) device of the first platform whose name or vendor contains it, case-insensitive.
     */
    public static Device select(String spec) {
        if (spec == null || spec.isBlank()) {
            spec = System.getProperty(PROPERTY);
        }
        if (spec == null || spec.isBlank()) {
            spec = System.getenv(ENV);
        }
        List<Device> all = list();
        if (all.isEmpty()) {
            throw new IllegalArgumentException("OpenCL backend: " + unavailableReason()
                    + ". Run './bitskip devices' to see the backends and devices that exist.");
        }
        if (spec == null || spec.isBlank()) {
            for (Device d : all) {
                if (d.type().equals("GPU")) {
                    return d;
                }
            }
            return all.get(0);
        }
        String s = spec.trim();
        int colon = s.lastIndexOf(':');
        int p, d;
        if (!s.isEmpty() && !Character.isDigit(s.charAt(0))) {
            // a platform by name: "nvidia", "pocl", "nvidia:1" (case-insensitive, in the platform's name or vendor)
            String want = (colon < 0 ? s : s.substring(0, colon)).trim().toLowerCase(Locale.ROOT);
            int index = 0;
            if (colon >= 0) {
                try {
                    index = Integer.parseInt(s.substring(colon + 1).trim());
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("OpenCL device '" + spec
                            + "' is neither P:D nor PLATFORM[:D] (a platform name or vendor)" + listing());
                }
            }
            for (Device dev : all) {
                String hay = (dev.platformName() + " " + dev.platformVendor()).toLowerCase(Locale.ROOT);
                if (hay.contains(want) && dev.deviceIndex() == index) {
                    return dev;
                }
            }
            throw new IllegalArgumentException("no OpenCL platform named '" + want + "' with a device " + index
                    + listing());
        }
        try {
            if (colon < 0) {
                p = Integer.parseInt(s);
                d = 0;
            } else {
                p = Integer.parseInt(s.substring(0, colon).trim());
                d = Integer.parseInt(s.substring(colon + 1).trim());
            }
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("OpenCL device '" + spec + "' is not of the form P:D (platform:device)"
                    + listing());
        }
        for (Device dev : all) {
            if (dev.platformIndex() == p && dev.deviceIndex() == d) {
                return dev;
            }
        }
        throw new IllegalArgumentException("OpenCL device " + p + ":" + d + " does not exist" + listing());
    }

    /** "; available devices:" and one line per device, for error messages. */
    public static String listing() {
        StringBuilder sb = new StringBuilder("; available OpenCL devices:");
        List<Device> all = list();
        if (all.isEmpty()) {
            sb.append(" none (").append(unavailableReason()).append(")");
        }
        for (Device d : all) {
            sb.append(System.lineSeparator()).append("  ").append(d.describe());
        }
        return sb.toString();
    }

    /** The table of {@code ./bitskip devices}: the host backends given, then every OpenCL device. */
    public static void print(PrintStream out, Iterable<String> hostBackends) {
        out.println("backend  device  description");
        for (String b : hostBackends) {
            if (!b.equals("opencl") && !b.equals("tornado")) {
                out.printf("%-8s %-7s %s%n", b, "-", "the JVM (" + Runtime.getRuntime().availableProcessors()
                        + " cores, " + (Runtime.getRuntime().maxMemory() >> 20) + " MiB heap)");
            }
        }
        List<Device> all = list();
        if (all.isEmpty()) {
            out.println("opencl   (none)  " + unavailableReason());
            return;
        }
        out.println();
        out.println("OpenCL devices (pass the id as --backend opencl --device P:D, or -Dbitskip.device=P:D):");
        out.printf("%-5s %-28s %-22s %-40s %-4s %s%n", "id", "platform", "vendor", "device", "type", "capabilities");
        for (Device d : all) {
            out.println(d.describe());
        }
    }

    /** Prints the device table (java -cp ... bitskip.engine.opencl.OpenCLDevices). */
    public static void main(String[] args) {
        print(System.out, List.of("java"));
    }

    private static String clip(String s, int n) {
        return s.length() <= n ? s : s.substring(0, n - 1) + "~";
    }

    static String platformString(cl_platform_id p, int param) {
        long[] size = new long[1];
        clGetPlatformInfo(p, param, 0, null, size);
        byte[] b = new byte[(int) size[0]];
        clGetPlatformInfo(p, param, b.length, Pointer.to(b), null);
        return cString(b);
    }

    static String deviceString(cl_device_id d, int param) {
        long[] size = new long[1];
        clGetDeviceInfo(d, param, 0, null, size);
        byte[] b = new byte[(int) size[0]];
        clGetDeviceInfo(d, param, b.length, Pointer.to(b), null);
        return cString(b);
    }

    static long deviceLong(cl_device_id d, int param) {
        long[] v = new long[1];
        clGetDeviceInfo(d, param, Sizeof.cl_long, Pointer.to(v), null);
        return v[0];
    }

    static int deviceInt(cl_device_id d, int param) {
        int[] v = new int[1];
        clGetDeviceInfo(d, param, Sizeof.cl_int, Pointer.to(v), null);
        return v[0];
    }

    static long deviceSizeT(cl_device_id d, int param) {
        if (Sizeof.size_t == 8) {
            return deviceLong(d, param);
        }
        return deviceInt(d, param) & 0xffffffffL;
    }

    private static String cString(byte[] b) {
        int n = b.length;
        while (n > 0 && b[n - 1] == 0) {
            n--;
        }
        return new String(b, 0, n, java.nio.charset.StandardCharsets.UTF_8).trim();
    }
}
