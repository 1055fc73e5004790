package bitskip.engine.opencl;

import bitskip.engine.Tensor;
import org.jocl.cl_mem;

/** A float buffer resident on an OpenCL device, owned by the {@link OpenCLBackend} that allocated it. */
public final class OpenCLTensor implements Tensor {
    final OpenCLBackend owner;
    final String name;
    final int size;
    cl_mem mem;

    OpenCLTensor(OpenCLBackend owner, String name, int size, cl_mem mem) {
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

    @Override
    public String toString() {
        return "OpenCLTensor(" + name + ", " + size + ")";
    }
}
