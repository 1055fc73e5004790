package bitskip.engine.cpu;

import bitskip.engine.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.lang.ref.Cleaner;
import java.nio.FloatBuffer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * A tensor of the CPU backend: n floats off the Java heap (calloc, freed by a Cleaner when the tensor is
 * garbage collected), seen by OpenBLAS through {@link #ptr} and by Java code through a native-order
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
        // calloc (zero-filled, lazily by the OS for large tensors), freed by a Cleaner when the tensor is
        // unreachable. Not new FloatPointer(n): that counts against JavaCPP's maxBytes (default -Xmx), which a
        // model's off-heap tensors may well exceed. Never a zero-byte allocation (calloc(0) may return null).
        long count = Math.max(1, n);
        Pointer raw = Pointer.calloc(count, 4);
        if (raw == null || raw.isNull()) {
            throw new OutOfMemoryError("cpu backend: cannot allocate " + count + " floats for tensor " + name);
        }
        CLEANER.register(this, new Free(raw));
        this.ptr = new FloatPointer(raw);
        this.ptr.capacity(count);
        this.bb = this.ptr.position(0).limit(count).asByteBuffer().order(ByteOrder.nativeOrder());
        this.fb = this.bb.asFloatBuffer();
    }

    private static final Cleaner CLEANER = Cleaner.create();

    /** The cleaning action: holds the raw pointer, never the tensor. */
    private static final class Free implements Runnable {
        private final Pointer raw;

        Free(Pointer raw) {
            this.raw = raw;
        }

        @Override
        public void run() {
            Pointer.free(raw);
        }
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
