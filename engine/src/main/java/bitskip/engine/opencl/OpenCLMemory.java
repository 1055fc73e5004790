package bitskip.engine.opencl;

import static org.jocl.CL.*;

import bitskip.engine.Span;
import bitskip.engine.Tensor;
import bitskip.engine.Tensors;
import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Set;
import org.jocl.CLException;
import org.jocl.Pointer;
import org.jocl.Sizeof;
import org.jocl.cl_mem;

/**
 * Device memory: the tensors of one backend (every one released at close, or one by one), the bytes they
 * take against the device's global memory, host transfers and copies.
 */
final class OpenCLMemory {
    private final OpenCLRuntime rt;
    private final Set<OpenCLTensor> tensors = new LinkedHashSet<>();
    private OpenCLQueue queue;
    private long allocated;
    /** Bytes this backend may allocate in all: the device's global memory unless a test lowers it. */
    private long budget = Long.MAX_VALUE;

    OpenCLMemory(OpenCLRuntime rt) {
        this.rt = rt;
    }

    void attach(OpenCLQueue q) {
        this.queue = q;
    }

    Tensor alloc(String name, int n) {
        if (n < 0) {
            throw new IllegalArgumentException("tensor " + name + ": negative size " + n);
        }
        long bytes = Math.max(4L * n, 4);
        OpenCLDevices.Device d = rt.device;
        if (bytes > d.maxAllocBytes() || allocated + bytes > Math.min(budget, d.globalMemBytes())) {
            throw outOfMemory(name, bytes, null);
        }
        cl_mem m;
        try {
            m = clCreateBuffer(rt.context, CL_MEM_READ_WRITE, bytes, null, null);
            clEnqueueFillBuffer(rt.queue, m, Pointer.to(new float[] {0.0f}), Sizeof.cl_float, 0, bytes, 0, null, null);
        } catch (CLException e) {
            throw outOfMemory(name, bytes, e);
        }
        allocated += bytes;
        OpenCLTensor t = new OpenCLTensor(this, name, n, m);
        tensors.add(t);
        return t;
    }

    private IllegalStateException outOfMemory(String name, long bytes, Exception cause) {
        OpenCLDevices.Device d = rt.device;
        return new IllegalStateException(String.format(Locale.ROOT,
                "OpenCL device %s (%s) lacks memory for tensor %s: %.1f MiB requested, %.1f MiB already allocated,"
                        + " device global memory %.1f MiB%s, largest single buffer %.1f MiB%s",
                d.id(), d.name(), name, bytes / 1048576.0, allocated / 1048576.0, d.globalMemBytes() / 1048576.0,
                budget < d.globalMemBytes() ? String.format(Locale.ROOT, " (of it usable here %.1f MiB)", budget / 1048576.0) : "",
                d.maxAllocBytes() / 1048576.0, OpenCLDevices.listing()), cause);
    }

    void limitMemory(long bytes) {
        budget = bytes;
    }

    long allocatedBytes() {
        return allocated;
    }

    /** The device buffer of one of this backend's live tensors. */
    cl_mem mem(Tensor x) {
        if (x instanceof OpenCLTensor o && o.owner == this) {
            if (o.mem == null) {
                throw new IllegalStateException("tensor " + x.name() + " was closed (by itself or by its backend)");
            }
            return o.mem;
        }
        throw new IllegalArgumentException("tensor " + x.name() + " belongs to another backend ("
                + x.getClass().getSimpleName() + "), not to this OpenCL backend");
    }

    void release(OpenCLTensor t) {
        if (t.mem != null) {
            clReleaseMemObject(t.mem); // deleted once the queued commands that use it have finished
            t.mem = null;
            allocated -= Math.max(4L * t.size, 4);
            tensors.remove(t);
        }
    }

    void releaseAll() {
        clFinish(rt.queue);
        for (OpenCLTensor t : tensors) {
            clReleaseMemObject(t.mem);
            t.mem = null;
        }
        tensors.clear();
        allocated = 0;
    }

    void upload(Tensor dst, float[] src) {
        Tensors.need(dst, src.length, "the uploaded array's length");
        if (src.length > 0) {
            clEnqueueWriteBuffer(rt.queue, mem(dst), CL_TRUE, 0, 4L * src.length, Pointer.to(src), 0, null, null);
        }
    }

    void download(Tensor src, float[] dst) {
        Tensors.need(src, dst.length, "the destination array's length");
        if (dst.length > 0) {
            clEnqueueReadBuffer(rt.queue, mem(src), CL_TRUE, 0, 4L * dst.length, Pointer.to(dst), 0, null, null);
        }
    }

    void copy(Span dst, int dstStride, Span src, int srcStride, int rows, int cols) {
        if (rows <= 0 || cols <= 0) {
            throw new IllegalArgumentException("copy: rows " + rows + " and cols " + cols + " must be positive");
        }
        dst.need((long) (rows - 1) * dstStride + cols, "copy destination rows*stride");
        src.need((long) (rows - 1) * srcStride + cols, "copy source rows*stride");
        cl_mem d = mem(dst.tensor()), s = mem(src.tensor());
        long dOff = 4L * dst.offset(), sOff = 4L * src.offset(), bytes = 4L * cols;
        if (rows > 1) {
            queue.run("copy2d", (long) rows * cols, dst.tensor(), dst.offset(), dstStride, src.tensor(), src.offset(),
                    srcStride, rows, cols);
        } else if (d == s && Math.abs(dOff - sOff) < bytes) {
            if (dOff != sOff) { // overlapping within one buffer: through a temporary, as memmove
                cl_mem tmp = queue.raw(bytes);
                clEnqueueCopyBuffer(rt.queue, s, tmp, sOff, 0, bytes, 0, null, null);
                clEnqueueCopyBuffer(rt.queue, tmp, d, 0, dOff, bytes, 0, null, null);
                clReleaseMemObject(tmp);
            }
        } else {
            clEnqueueCopyBuffer(rt.queue, s, d, sOff, dOff, bytes, 0, null, null);
        }
    }
}
