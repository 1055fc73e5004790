package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Kernels that move floats within the device arena and between the arena and the host staging buffer.
 *
 * <p>Every kernel of this backend is a plain static method that TornadoVM compiles to OpenCL C at its first
 * launch. They all take the arena {@code m} (every tensor of the backend lives in it at an offset) and the
 * launch arguments {@code a} (offsets and sizes, written by the host before each launch), so that one
 * compiled kernel serves every tensor and shape: TornadoVM folds scalar parameters into the compiled code as
 * constants, which would mean one compilation per call site. Loop bounds read from {@code a} are legal
 * {@code @Parallel} bounds because the launches give their grid explicitly (see {@link Launcher}).
 */
final class MemoryKernels {
    private MemoryKernels() {}

    /** m[o + i] = 0 for i &lt; n. a = (o, n). */
    static void zero(FloatArray m, IntArray a) {
        int o = a.get(0);
        for (@Parallel int i = 0; i < a.get(1); i++) {
            m.set(o + i, 0.0f);
        }
    }

    /**
     * A strided 2-D copy: m[dst + r·dstStride + c] = m[src + r·srcStride + c] for r &lt; rows, c &lt; cols, one
     * work-item per element; the caller keeps overlapping ranges apart. a = (dst, dstStride, src, srcStride,
     * rows, cols).
     */
    static void copy2d(FloatArray m, IntArray a) {
        int dst = a.get(0), dstStride = a.get(1), src = a.get(2), srcStride = a.get(3), cols = a.get(5);
        for (@Parallel int i = 0; i < a.get(4) * cols; i++) {
            int r = i / cols, c = i - r * cols;
            m.set(dst + r * dstStride + c, m.get(src + r * srcStride + c));
        }
    }

    /** m[o + i] = stage[i] for i &lt; n: the device half of an upload. a = (o, n). */
    static void fromStage(FloatArray m, IntArray a, FloatArray stage) {
        int o = a.get(0);
        for (@Parallel int i = 0; i < a.get(1); i++) {
            m.set(o + i, stage.get(i));
        }
    }
}
