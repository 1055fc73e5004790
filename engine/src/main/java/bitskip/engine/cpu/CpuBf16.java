package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;

import bitskip.engine.Mat;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.IdentityHashMap;
import java.util.Map;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import org.bytedeco.javacpp.Pointer;

/**
 * The bf16 side of the products (precision bf16): each operand rounded to bfloat16 (round to nearest even, the
 * conversion of PyTorch's {@code .to(torch.bfloat16)} and of AVX512-BF16's vcvtneps2bf16) into a scratch copy,
 * then oneDNN's bf16 × bf16 → f32 product on the pool's threads ({@link Dnnl.Thread}); C stays float32, and so do
 * the master weights, the optimizer state and every other op.
 *
 * <p>A pinned tensor is converted once and used in every product until unpinned: the LM head's weight, read by
 * every chunk's forward and input-gradient products of every exit, would otherwise be converted each time
 * (at {@code paper-85m} 103 MB per chunk, as long as a tenth of the chunk's products).
 */
final class CpuBf16 {
    /** Off-heap bf16 storage that grows as needed. */
    static final class Buffer {
        Pointer base;
        ByteBuffer bb;
        long capacity;

        void ensure(long shorts) {
            if (shorts <= capacity) {
                return;
            }
            free();
            long n = Math.max(1, shorts);
            if (n * 2 > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("bf16 operand of " + n + " elements is larger than 2 GB");
            }
            base = Pointer.malloc(n * 2);
            if (base == null || base.isNull()) {
                throw new OutOfMemoryError("cpu backend: cannot allocate " + n + " bf16 elements");
            }
            base.capacity(n * 2);
            bb = base.limit(n * 2).asByteBuffer().order(ByteOrder.nativeOrder());
            capacity = n;
        }

        void free() {
            if (base != null) {
                Pointer.free(base);
                base = null;
                bb = null;
                capacity = 0;
            }
        }
    }

    /** An operand in bf16: element offset and leading dimension in {@code buffer}, same orientation as its Mat. */
    record Operand(Buffer buffer, long offset, int ld) {}

    private final CpuContext cx;
    private final Dnnl.Thread[] threads;
    private final Buffer scratchA = new Buffer(), scratchB = new Buffer();
    private final Map<CpuTensor, Buffer> pinned = new IdentityHashMap<>();
    /**
     * Unpinned copies' buffers, kept for reuse: malloc and first touch of a fresh buffer cost ~13 µs per 4 KiB page
     * here. Two, because a head pass pins two sizes at once, its weight (V·C) and each chunk's logit gradient (R·V):
     * with one spare the larger took it and the other was malloc'd again every pass (R = 512, small: a 51 MB buffer
     * per pass, small bitskip in bf16 at 623 instead of 747 tokens/s).
     */
    private static final int SPARES = 2;
    private final java.util.List<Buffer> spares = new java.util.ArrayList<>();

    CpuBf16(CpuContext cx) {
        this.cx = cx;
        threads = new Dnnl.Thread[cx.threads];
        for (int w = 0; w < threads.length; w++) {
            threads[w] = new Dnnl.Thread();
        }
    }

    Dnnl.Thread thread(int worker) {
        return threads[worker];
    }

    /** Bits of the bfloat16 nearest to f (ties to even); NaN stays a quiet NaN. */
    static short round(float f) {
        int b = Float.floatToRawIntBits(f);
        if ((b & 0x7fffffff) > 0x7f800000) {
            return (short) ((b >>> 16) | 0x0040);
        }
        return (short) ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16);
    }

    /** The float a bf16 bit pattern stands for. */
    static float value(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /**
     * Converts the first n elements of t once; products read the copy until {@link #unpin} (they must read no
     * element past n). The copy's buffer is kept for the next pin of the same size.
     */
    void pin(CpuTensor t, int n) {
        Buffer found = null;
        for (Buffer s : spares) { // the smallest spare that holds n
            if (s.capacity >= n && (found == null || s.capacity < found.capacity)) {
                found = s;
            }
        }
        spares.remove(found);
        Buffer b = found == null ? new Buffer() : found;
        b.ensure(n);
        int cols = 4096, rows = (n + cols - 1) / cols;
        cx.pool.forRange(rows, 16, (w, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                convertRun(t.bb, (long) i * cols, b.bb, (long) i * cols, Math.min(cols, n - i * cols));
            }
        });
        Buffer old = pinned.put(t, b);
        if (old != null) {
            old.free();
        }
    }

    void unpin(CpuTensor t) {
        Buffer b = pinned.remove(t);
        if (b != null) {
            spares.add(b); // kept: the next pass pins the same sizes again
            if (spares.size() > SPARES) {
                Buffer smallest = spares.get(0);
                for (Buffer s : spares) {
                    smallest = s.capacity < smallest.capacity ? s : smallest;
                }
                spares.remove(smallest);
                smallest.free();
            }
        }
    }

    /** op(m) of logical shape (rows, cols) in bf16: the pinned copy, or a conversion into A's or B's scratch. */
    Operand operand(Mat m, int rows, int cols, boolean isA) {
        CpuTensor t = of(m.tensor());
        Buffer p = pinned.get(t);
        if (p != null) {
            return new Operand(p, m.offset(), m.ld());
        }
        Buffer dst = isA ? scratchA : scratchB;
        int sr = m.transposed() ? cols : rows, sc = m.transposed() ? rows : cols; // as stored
        dst.ensure((long) sr * sc);
        long src0 = m.offset();
        int ld = m.ld();
        cx.pool.forRange(sr, Math.max(1, Vec.GRAIN / Math.max(1, sc)), (w, lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                convertRun(t.bb, src0 + (long) i * ld, dst.bb, (long) i * sc, sc);
            }
        });
        return new Operand(dst, 0, sc);
    }

    /** Short lanes as many as a float vector's, in half its bits (512-bit floats: 256-bit shorts). */
    private static final VectorSpecies<Short> SHORTS = VectorSpecies.of(short.class, VectorShape.forBitSize(Vec.S.vectorBitSize() / 2));

    private void convertRun(ByteBuffer src, long srcOff, ByteBuffer dst, long dstOff, int n) {
        convertRun(cx.vector, src, srcOff, dst, dstOff, n);
    }

    /** n floats from element srcOff of src to bf16 at element dstOff of dst, the vector loop where vector is set. */
    static void convertRun(boolean vector, ByteBuffer src, long srcOff, ByteBuffer dst, long dstOff, int n) {
        int s = (int) (srcOff << 2), d = (int) (dstOff << 1), j = 0;
        if (vector) {
            for (; j + Vec.VL <= n; j += Vec.VL) {
                roundVector(src, s + (j << 2), dst, d + (j << 1));
            }
        }
        for (; j < n; j++) {
            dst.putShort(d + (j << 1), round(src.getFloat(s + (j << 2))));
        }
    }

    /** {@link #round} of one vector of floats at byte offset s of src into shorts at byte offset d of dst. */
    private static void roundVector(ByteBuffer src, int s, ByteBuffer dst, int d) {
        FloatVector f = VectorIO.load(Vec.S, src, s);
        IntVector b = f.reinterpretAsInts();
        IntVector hi = b.lanewise(VectorOperators.LSHR, 16);
        IntVector r = b.add(0x7fff).add(hi.and(1)).lanewise(VectorOperators.LSHR, 16);
        VectorMask<Integer> nan = f.test(VectorOperators.IS_NAN).cast(b.species());
        r = r.blend(hi.or(0x40), nan);
        VectorIO.storeShorts((ShortVector) r.convertShape(VectorOperators.I2S, SHORTS, 0), dst, d);
    }

    /** Frees the scratch and every pinned copy. */
    void close() {
        scratchA.free();
        scratchB.free();
        pinned.values().forEach(Buffer::free);
        pinned.clear();
        spares.forEach(Buffer::free);
        spares.clear();
    }
}
