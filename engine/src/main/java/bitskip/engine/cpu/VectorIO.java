package bitskip.engine.cpu;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Float vector loads and stores on the CPU backend's off-heap tensors, on every JDK the product runs on.
 *
 * <p>The Vector API is an incubator module and changed under us: JDK 17–19 load from a direct
 * {@link ByteBuffer} ({@code FloatVector.fromByteBuffer}), JDK 20 removed that for
 * {@code FloatVector.fromMemorySegment}, whose {@code MemorySegment} type does not exist in JDK 17, the
 * release this project compiles against. So the JDK 17 call is written out (and is what {@link #LEGACY}
 * JDKs execute: the JVM links a call only when it first runs it), and newer JDKs go through method
 * handles found once here; a {@code static final} handle is a constant to the JIT, so the call inlines
 * and the intrinsic still applies.
 */
final class VectorIO {
    private VectorIO() {}

    /** True where {@code FloatVector.fromByteBuffer} exists (JDK 17–19). */
    static final boolean LEGACY = hasByteBufferMethods();
    private static final MethodHandle LOAD; // (VectorSpecies, ByteBuffer, int, ByteOrder) -> FloatVector
    private static final MethodHandle STORE; // (FloatVector, ByteBuffer, int, ByteOrder) -> void
    private static final MethodHandle STORE_SHORTS; // (ShortVector, ByteBuffer, int, ByteOrder) -> void

    static {
        MethodHandle load = null, store = null, storeShorts = null;
        if (!LEGACY) {
            try {
                MethodHandles.Lookup l = MethodHandles.publicLookup();
                Class<?> segment = Class.forName("java.lang.foreign.MemorySegment");
                MethodHandle ofBuffer = l.findStatic(segment, "ofBuffer", MethodType.methodType(segment, java.nio.Buffer.class))
                        .asType(MethodType.methodType(segment, ByteBuffer.class));
                MethodHandle from = l.findStatic(FloatVector.class, "fromMemorySegment",
                        MethodType.methodType(FloatVector.class, VectorSpecies.class, segment, long.class, ByteOrder.class));
                MethodHandle into = l.findVirtual(FloatVector.class, "intoMemorySegment",
                        MethodType.methodType(void.class, segment, long.class, ByteOrder.class));
                load = MethodHandles.filterArguments(from, 1, ofBuffer)
                        .asType(MethodType.methodType(FloatVector.class, VectorSpecies.class, ByteBuffer.class, int.class, ByteOrder.class));
                store = MethodHandles.filterArguments(into, 1, ofBuffer)
                        .asType(MethodType.methodType(void.class, FloatVector.class, ByteBuffer.class, int.class, ByteOrder.class));
                MethodHandle intoShorts = l.findVirtual(ShortVector.class, "intoMemorySegment",
                        MethodType.methodType(void.class, segment, long.class, ByteOrder.class));
                storeShorts = MethodHandles.filterArguments(intoShorts, 1, ofBuffer)
                        .asType(MethodType.methodType(void.class, ShortVector.class, ByteBuffer.class, int.class, ByteOrder.class));
            } catch (ReflectiveOperationException e) {
                throw new ExceptionInInitializerError(new IllegalStateException("cpu backend: this JDK ("
                        + System.getProperty("java.version") + ") has neither FloatVector.fromByteBuffer nor "
                        + "fromMemorySegment; run with -Dbitskip.cpu.vector=false or another JDK", e));
            }
        }
        LOAD = load;
        STORE = store;
        STORE_SHORTS = storeShorts;
    }

    private static boolean hasByteBufferMethods() {
        try {
            FloatVector.class.getMethod("fromByteBuffer", VectorSpecies.class, ByteBuffer.class, int.class, ByteOrder.class);
            return true;
        } catch (NoSuchMethodException e) {
            return false;
        }
    }

    /** The vector of s.length() floats at byte offset off of b, in the native order. */
    static FloatVector load(VectorSpecies<Float> s, ByteBuffer b, int off) {
        if (LEGACY) {
            return FloatVector.fromByteBuffer(s, b, off, ByteOrder.nativeOrder());
        }
        try {
            return (FloatVector) LOAD.invokeExact(s, b, off, ByteOrder.nativeOrder());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Writes v at byte offset off of b, in the native order. */
    static void store(FloatVector v, ByteBuffer b, int off) {
        if (LEGACY) {
            v.intoByteBuffer(b, off, ByteOrder.nativeOrder());
            return;
        }
        try {
            STORE.invokeExact(v, b, off, ByteOrder.nativeOrder());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Writes v (shorts: the bf16 copies of {@link CpuBf16}) at byte offset off of b, in the native order. */
    static void storeShorts(ShortVector v, ByteBuffer b, int off) {
        if (LEGACY) {
            v.intoByteBuffer(b, off, ByteOrder.nativeOrder());
            return;
        }
        try {
            STORE_SHORTS.invokeExact(v, b, off, ByteOrder.nativeOrder());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException(t);
    }
}
