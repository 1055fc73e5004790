package bitskip.engine.opencl;

import static org.jocl.CL.*;

import bitskip.engine.Tensor;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_kernel;
import org.jocl.cl_mem;

/**
 * Kernel launches on one device's in-order queue: arguments from tensors, scalars, raw buffers and local
 * memory sizes; null tensors become a dummy buffer (the kernels test a flag before reading them).
 */
final class OpenCLQueue {
    /** -Dbitskip.opencl.trace=true: finish and log every kernel launch (debugging). */
    private static final boolean TRACE = Boolean.getBoolean("bitskip.opencl.trace");

    final OpenCLRuntime rt;
    private final OpenCLMemory memory;
    private final cl_mem dummy;

    OpenCLQueue(OpenCLRuntime rt, OpenCLMemory memory) {
        this.rt = rt;
        this.memory = memory;
        this.dummy = raw(16);
    }

    /** A __local argument of this many bytes. */
    record Local(long bytes) {}

    cl_mem raw(long bytes) {
        return clCreateBuffer(rt.context, CL_MEM_READ_WRITE, Math.max(bytes, 16), null, null);
    }

    /** A read-only device copy of ints (tokens, targets); release it once the queue is done with it. */
    cl_mem ints(int[] a) {
        int[] src = a.length == 0 ? new int[1] : a;
        return clCreateBuffer(rt.context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, 4L * src.length, Pointer.to(src), null);
    }

    void launch(String name, long[] global, long[] local, Object... args) {
        synchronized (rt) {
            cl_kernel k = rt.kernel(name);
            for (int i = 0; i < args.length; i++) {
                Object a = args[i];
                if (a == null) {
                    clSetKernelArg(k, i, Sizeof.cl_mem, Pointer.to(dummy));
                } else if (a instanceof Tensor x) {
                    clSetKernelArg(k, i, Sizeof.cl_mem, Pointer.to(memory.mem(x)));
                } else if (a instanceof cl_mem m) {
                    clSetKernelArg(k, i, Sizeof.cl_mem, Pointer.to(m));
                } else if (a instanceof Integer v) {
                    clSetKernelArg(k, i, Sizeof.cl_int, Pointer.to(new int[] {v}));
                } else if (a instanceof Boolean v) {
                    clSetKernelArg(k, i, Sizeof.cl_int, Pointer.to(new int[] {v ? 1 : 0}));
                } else if (a instanceof Float v) {
                    clSetKernelArg(k, i, Sizeof.cl_float, Pointer.to(new float[] {v}));
                } else if (a instanceof Long v) {
                    clSetKernelArg(k, i, Sizeof.cl_long, Pointer.to(new long[] {v}));
                } else if (a instanceof Local l) {
                    clSetKernelArg(k, i, l.bytes(), null);
                } else {
                    throw new IllegalArgumentException("kernel " + name + " argument " + i + ": " + a.getClass());
                }
            }
            if (TRACE) {
                System.err.println("opencl: " + name + " " + java.util.Arrays.toString(global) + " "
                        + java.util.Arrays.deepToString(args));
            }
            clEnqueueNDRangeKernel(rt.queue, k, global.length, null, global, local, 0, null, null);
            if (TRACE) {
                clFinish(rt.queue);
            }
        }
    }

    /** One work-item per element of n. */
    void run(String name, long n, Object... args) {
        if (n > 0) {
            launch(name, new long[] {n}, null, args);
        }
    }

    static long roundUp(long n, long m) {
        return (n + m - 1) / m * m;
    }

    void finish() {
        clFinish(rt.queue);
    }

    void close() {
        clReleaseMemObject(dummy);
    }
}
