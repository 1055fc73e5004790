package bitskip.engine.cpu;

import bitskip.engine.Tensor;
import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * A tensor of the CPU backend: n floats off the Java heap, seen by OpenBLAS through {@link #ptr} and by Java
 * code through a native-order direct {@link ByteBuffer} (Vector API loads) and a {@link FloatBuffer} view
 * (scalar loops).
 *
 * <p>The memory is calloc'd and freed exactly once: by {@link #close}, by the backend's close (which frees
 * every tensor it still holds), or by a Cleaner when an unclosed tensor becomes unreachable. {@link #liveBytes}
 * counts what is allocated and not yet freed, process-wide. A closed tensor refuses use with its name (its
 * memory is gone; reading it would read freed memory).
 */
public final class CpuTensor implements Tensor {
    private static final Cleaner CLEANER = Cleaner.create();
    private static final AtomicLong LIVE_BYTES = new AtomicLong();

    private final String name;
    private final int size;
    private final Block block;
    final FloatPointer ptr;
    final ByteBuffer bb;
    final FloatBuffer fb;

    CpuTensor(String name, int n, Set<Block> live) {
        if (n < 0) {
            throw new IllegalArgumentException("tensor " + name + ": negative size " + n);
        }
        this.name = name;
        this.size = n;
        // calloc (zero-filled, lazily by the OS for large tensors). Not new FloatPointer(n): that counts against
        // JavaCPP's maxBytes (default -Xmx), which a model's off-heap tensors may well exceed. Never a zero-byte
        // allocation (calloc(0) may return null).
        long count = Math.max(1, n);
        Pointer raw = Pointer.calloc(count, 4);
        if (raw == null || raw.isNull()) {
            throw new OutOfMemoryError("cpu backend: cannot allocate " + count + " floats for tensor " + name);
        }
        this.block = new Block(raw, count * 4, live);
        CLEANER.register(this, block);
        this.ptr = new FloatPointer(raw);
        this.ptr.capacity(count);
        this.bb = this.ptr.position(0).limit(count).asByteBuffer().order(ByteOrder.nativeOrder());
        this.fb = this.bb.asFloatBuffer();
    }

    /** Bytes of CPU tensors allocated and not yet freed, in this process. */
    public static long liveBytes() {
        return LIVE_BYTES.get();
    }

    /**
     * The native block of one tensor: freed once, by whoever comes first (close, the backend's close, the
     * Cleaner). Holds the raw pointer and a flag, never the tensor, so the tensor can become unreachable.
     */
    static final class Block implements Runnable {
        private final Pointer raw;
        private final long bytes;
        private final Set<Block> live;
        private final AtomicBoolean freed = new AtomicBoolean();

        Block(Pointer raw, long bytes, Set<Block> live) {
            this.raw = raw;
            this.bytes = bytes;
            this.live = live;
            LIVE_BYTES.addAndGet(bytes);
            live.add(this);
        }

        @Override
        public void run() {
            if (freed.compareAndSet(false, true)) {
                live.remove(this);
                Pointer.free(raw);
                LIVE_BYTES.addAndGet(-bytes);
            }
        }

        boolean freed() {
            return freed.get();
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

    @Override
    public void close() {
        block.run();
    }

    /** The CpuTensor behind t, or null for null; refuses a tensor of another backend, or a closed one. */
    static CpuTensor of(Tensor t) {
        if (t == null) {
            return null;
        }
        if (t instanceof CpuTensor c) {
            if (c.block.freed()) {
                throw new IllegalStateException("tensor " + c.name + " was closed (by itself or by its backend)");
            }
            return c;
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
