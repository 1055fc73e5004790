package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;

import bitskip.engine.Span;
import bitskip.engine.Tensor;
import bitskip.kernels.Check;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Memory and copies: off-heap tensors, host transfers, strided copies; frees what is left at close. */
final class CpuMemory {
    private final CpuContext cx;
    private final Set<CpuTensor.Block> live = ConcurrentHashMap.newKeySet();

    CpuMemory(CpuContext cx) {
        this.cx = cx;
    }

    Tensor alloc(String name, int n) {
        return new CpuTensor(name, n, live);
    }

    /** A scratch tensor of at least n floats: current if it holds them, else a new one (current is freed). */
    CpuTensor grown(CpuTensor current, String name, long n) {
        if (current != null && current.size() >= n) {
            return current;
        }
        if (current != null) {
            current.close();
        }
        return new CpuTensor(name, Math.toIntExact(n), live);
    }

    void upload(Tensor dst, float[] src) {
        of(dst).need(src.length, "the uploaded array's length").fb.put(0, src);
    }

    void download(Tensor src, float[] dst) {
        of(src).need(dst.length, "the destination array's length").fb.get(0, dst);
    }

    void copy(Span dst, int dstStride, Span src, int srcStride, int rows, int cols) {
        Check.positive("rows", rows, "cols", cols);
        CpuTensor d = of(dst.tensor()), s = of(src.tensor());
        d.need(dst.offset() + (long) (rows - 1) * dstStride + cols, "copy destination offset + rows*stride");
        s.need(src.offset() + (long) (rows - 1) * srcStride + cols, "copy source offset + rows*stride");
        int d0 = dst.offset(), s0 = src.offset();
        if (rows == 1) {
            // absolute bulk copy: no position state, overlapping ranges of one tensor copy as memmove does
            d.bb.put(d0 << 2, s.bb, s0 << 2, cols << 2);
            return;
        }
        cx.pool.forRange(rows, Math.max(1, Vec.GRAIN / cols), (w, lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                d.bb.put((d0 + r * dstStride) << 2, s.bb, (s0 + r * srcStride) << 2, cols << 2);
            }
        });
    }

    /** Frees every tensor still allocated (the model's, and any a caller forgot). */
    void closeAll() {
        for (CpuTensor.Block b : List.copyOf(live)) {
            b.run();
        }
    }
}
