package bitskip.engine.opencl;

import bitskip.engine.Tensor;
import org.jocl.cl_mem;

/** A float buffer resident on an OpenCL device, owned by the backend ({@link OpenCLMemory}) that allocated it. */
public final class OpenCLTensor implements Tensor {
    final OpenCLMemory owner;
    final String name;
    final int size;
    cl_mem mem;

    OpenCLTensor(OpenCLMemory owner, String name, int size, cl_mem mem) {
        this.owner = owner;
        this.name = name;
        this.size = size;
        this.mem = mem;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String name() {
        return name;
    }

    /** Releases the device buffer now (after the queued work that uses it). */
    @Override
    public void close() {
        owner.release(this);
    }

    @Override
    public String toString() {
        return "OpenCLTensor(" + name + ", " + size + ")";
    }
}
