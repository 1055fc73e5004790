package bitskip.engine.cpu;

import bitskip.engine.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import org.bytedeco.javacpp.FloatPointer;

/**
 * A tensor of the CPU backend: n floats off the Java heap (JavaCPP malloc, zero-filled, freed when the
 * tensor is garbage collected), seen by OpenBLAS through {@link #ptr} and by Java code through a native-order
 * direct {@link ByteBuffer} (Vector API loads) and a {@link FloatBuffer} view (scalar loops).
 */
public final class CpuTensor implements Tensor {
    private final String name;
    private final int size;
    final FloatPointer ptr;
    final ByteBuffer bb;
    final FloatBuffer fb;

    CpuTensor(String name, int n) {
        if (n < 0) {
            throw new IllegalArgumentException("tensor " + name + ": negative size " + n);
        }
        this.name = name;
        this.size = n;
        // never a zero-byte allocation (malloc(0) may return null)
        this.ptr = new FloatPointer(Math.max(1, n));
        this.ptr.zero();
        this.bb = this.ptr.position(0).limit(Math.max(1, n)).asByteBuffer().order(ByteOrder.nativeOrder());
        this.fb = this.bb.asFloatBuffer();
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String name() {
        return name;
    }

    /** The CpuTensor behind t, or null for null; refuses a tensor of another backend. */
    static CpuTensor of(Tensor t) {
        if (t == null) {
            return null;
        }
        if (t instanceof CpuTensor) {
            return (CpuTensor) t;
        }
        throw new IllegalArgumentException("tensor " + t.name() + " belongs to another backend ("
                + t.getClass().getSimpleName() + "), not to the cpu backend");
    }

    /** Requires at least len elements; names the tensor and where len comes from. */
    CpuTensor need(long len, String how) {
        if (len > size) {
            throw new IllegalArgumentException("argument " + name + " has " + size + " floats, expected at least "
                    + len + " (" + how + ")");
        }
        return this;
    }

    @Override
    public String toString() {
        return "CpuTensor(" + name + ", " + size + ")";
    }
}
