package bitskip.engine.opencl;

import static org.jocl.CL.*;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.jocl.CL;
import org.jocl.CLException;
import org.jocl.cl_command_queue;
import org.jocl.cl_context;
import org.jocl.cl_context_properties;
import org.jocl.cl_kernel;
import org.jocl.cl_program;

/**
 * One device's context, in-order queue and compiled program. Compiled once per device (and build
 * options) and cached for the life of the JVM, so every backend opened on the device shares it.
 */
final class OpenCLRuntime {
    static final String SOURCE = "/bitskip/opencl/bitskip.cl";
    /** -Dbitskip.opencl.fp64=false compiles the float-only path even where the device has fp64. */
    static final String FP64_PROPERTY = "bitskip.opencl.fp64";

    private static final Map<String, OpenCLRuntime> CACHE = new ConcurrentHashMap<>();

    final OpenCLDevices.Device device;
    final cl_context context;
    final cl_command_queue queue;
    final cl_program program;
    final boolean fp64;
    /** Work-group size of the reductions and of the cross-entropy rows (a power of two). */
    final int rwg;
    final long buildMillis;
    private final Map<String, cl_kernel> kernels = new HashMap<>();

    private OpenCLRuntime(OpenCLDevices.Device d, boolean fp64) {
        CL.setExceptionsEnabled(true);
        this.device = d;
        this.fp64 = fp64;
        int wg = 256;
        while (wg > d.maxWorkGroupSize()) {
            wg /= 2;
        }
        this.rwg = wg;
        cl_context_properties props = new cl_context_properties();
        props.addProperty(CL_CONTEXT_PLATFORM, d.platform());
        context = clCreateContext(props, 1, new org.jocl.cl_device_id[] {d.device()}, null, null, null);
        queue = clCreateCommandQueue(context, d.device(), 0, null);
        String src = source();
        long t0 = System.nanoTime();
        program = clCreateProgramWithSource(context, 1, new String[] {src}, null, null);
        String opts = options();
        try {
            clBuildProgram(program, 0, null, opts, null, null);
        } catch (CLException e) {
            throw new IllegalStateException("OpenCL program build failed on " + d.id() + " " + d.name()
                    + " with options '" + opts + "':\n" + buildLog(), e);
        }
        buildMillis = (System.nanoTime() - t0) / 1_000_000;
    }

    String options() {
        return "-cl-fp32-correctly-rounded-divide-sqrt -DRWG=" + rwg + (fp64 ? " -DUSE_FP64" : "");
    }

    static OpenCLRuntime of(OpenCLDevices.Device d, boolean allowFp64) {
        boolean fp64 = allowFp64 && d.fp64() && !"false".equalsIgnoreCase(System.getProperty(FP64_PROPERTY, "true"));
        return CACHE.computeIfAbsent(d.id() + (fp64 ? "/fp64" : "/fp32"), k -> new OpenCLRuntime(d, fp64));
    }

    synchronized cl_kernel kernel(String name) {
        return kernels.computeIfAbsent(name, n -> clCreateKernel(program, n, null));
    }

    private String buildLog() {
        long[] size = new long[1];
        clGetProgramBuildInfo(program, device.device(), CL_PROGRAM_BUILD_LOG, 0, null, size);
        byte[] b = new byte[(int) size[0]];
        clGetProgramBuildInfo(program, device.device(), CL_PROGRAM_BUILD_LOG, b.length, org.jocl.Pointer.to(b), null);
        return new String(b, StandardCharsets.UTF_8);
    }

    static String source() {
        try (InputStream in = OpenCLRuntime.class.getResourceAsStream(SOURCE)) {
            if (in == null) {
                throw new IllegalStateException("missing resource " + SOURCE);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + SOURCE, e);
        }
    }
}
