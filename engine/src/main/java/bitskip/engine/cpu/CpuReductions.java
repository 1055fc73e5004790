package bitskip.engine.cpu;

import static bitskip.engine.cpu.CpuTensor.of;
import static bitskip.engine.cpu.Vec.BLOCK;
import static bitskip.engine.cpu.Vec.DS;
import static bitskip.engine.cpu.Vec.FH;
import static bitskip.engine.cpu.Vec.GRAIN;

import bitskip.engine.Reduction;
import bitskip.engine.Rows;
import bitskip.engine.Tensor;
import bitskip.engine.Tensors;
import bitskip.kernels.Check;
import java.nio.FloatBuffer;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * Sums and indexed rows: the whole-tensor reductions, column sums of a row block, and the embedding's gather
 * and scatter-add. Every sum has a fixed order (fixed blocks, columns in row order), so results do not depend
 * on the thread count.
 */
final class CpuReductions {
    private final CpuContext cx;
    private double[] partial = new double[0];

    CpuReductions(CpuContext cx) {
        this.cx = cx;
    }

    double reduce(Reduction r, Tensor a, Tensor b, int n) {
        Check.positive("n", n);
        CpuTensor x = of(a).need(n, "n");
        return switch (r) {
            // alpha's sum exactly as Quantize.sumAbs: one sequential double sum (the ternary weights are
            // bit-exact with the reference only if alpha is; a parallel sum would change its order)
            case ABS -> {
                double sum = 0.0;
                FloatBuffer xf = x.fb;
                for (int i = 0; i < n; i++) {
                    sum += Math.abs(xf.get(i));
                }
                yield sum;
            }
            case SQUARES -> blockSum(x, null, n);
            case SQUARED_DIFF -> blockSum(x, of(b).need(n, "n"), n);
        };
    }

    /**
     * Σ (a − b)² (b null: Σ a²) in double, over fixed blocks of {@value Vec#BLOCK} elements summed in block
     * order: the result does not depend on the thread count.
     */
    private double blockSum(CpuTensor a, CpuTensor b, int n) {
        int blocks = (n + BLOCK - 1) / BLOCK;
        if (partial.length < blocks) {
            partial = new double[blocks];
        }
        double[] part = partial;
        boolean vector = cx.vector;
        cx.pool.forRange(blocks, 4, (w, b0, b1) -> {
            for (int k = b0; k < b1; k++) {
                int lo = k * BLOCK, hi = Math.min(n, lo + BLOCK);
                double s = 0.0;
                int i = lo;
                if (vector) {
                    int whole = lo + (hi - lo) / FH.length() * FH.length();
                    s = b == null ? squares(a.bb, lo, whole) : squaredDiffs(a.bb, b.bb, lo, whole);
                    i = whole;
                }
                for (; i < hi; i++) {
                    double d = b == null ? a.fb.get(i) : a.fb.get(i) - b.fb.get(i);
                    s += d * d;
                }
                part[k] = s;
            }
        });
        double sum = 0.0;
        for (int k = 0; k < blocks; k++) {
            sum += part[k];
        }
        return sum;
    }

    // The two vector loops of blockSum, each its own small method exchanging only numbers and buffers (the rule of
    // CpuLosses and VectorMath: no vector crosses a method boundary or lives in a large lambda). A JFR of short runs
    // attributed GBs of boxed vectors to the old loop inside the lambda; -XX:+PrintCompilation showed that was C1
    // code (C2 compiled these loops only ~30 s into a small run), so the split keeps the rule, it is not a
    // measured speed-up.

    /** Σ a[i]² for i in [lo, hi), hi − lo a multiple of FH's length, in double lanes then summed across them. */
    private static double squares(java.nio.ByteBuffer a, int lo, int hi) {
        DoubleVector acc = DoubleVector.zero(DS);
        for (int i = lo; i < hi; i += FH.length()) {
            DoubleVector d = (DoubleVector) VectorIO.load(FH, a, i << 2).convertShape(VectorOperators.F2D, DS, 0);
            acc = d.fma(d, acc); // the product of two floats is exact in double: fma == mul + add
        }
        return Lanes.sum(acc);
    }

    /** Σ (a[i] − b[i])² likewise (the difference in float, as the scalar loop). */
    private static double squaredDiffs(java.nio.ByteBuffer a, java.nio.ByteBuffer b, int lo, int hi) {
        DoubleVector acc = DoubleVector.zero(DS);
        for (int i = lo; i < hi; i += FH.length()) {
            FloatVector f = VectorIO.load(FH, a, i << 2).sub(VectorIO.load(FH, b, i << 2));
            DoubleVector d = (DoubleVector) f.convertShape(VectorOperators.F2D, DS, 0);
            acc = d.fma(d, acc);
        }
        return Lanes.sum(acc);
    }

    /** dst[dstOffset + j] += Σ_i src[i·cols + j]: each column's sum formed in row order, then added. */
    void sumRows(Tensor dst, int dstOffset, Tensor src, int rows, int cols) {
        Check.positive("rows", rows, "cols", cols);
        CpuTensor d = of(dst).need((long) dstOffset + cols, "dstOffset + cols");
        CpuTensor s = of(src).need((long) rows * cols, "rows*cols");
        cx.planScratch(cols); // grown here, never inside the parallel body
        cx.pool.forRange(cols, Math.max(16, GRAIN / rows), (w, c0, c1) -> {
            float[] acc = cx.scratch(w);
            int len = c1 - c0;
            java.util.Arrays.fill(acc, 0, len, 0.0f);
            for (int i = 0; i < rows; i++) {
                int row = i * cols + c0;
                for (int c = 0; c < len; c++) {
                    acc[c] += s.fb.get(row + c);
                }
            }
            for (int c = 0; c < len; c++) {
                int at = dstOffset + c0 + c;
                d.fb.put(at, d.fb.get(at) + acc[c]);
            }
        });
    }

    /**
     * dst (OC) += src row by row, for rows 0..N−1 in order: the order the cpu backend has always summed a
     * linear layer's bias gradient in (kept so that its training runs reproduce bit for bit).
     */
    void addRowsInto(Tensor dst, Tensor src, int N, int OC) {
        Check.positive("N", N, "OC", OC);
        CpuTensor d = of(dst).need(OC, "OC");
        CpuTensor g = of(src).need((long) N * OC, "N*OC");
        boolean vector = cx.vector;
        cx.pool.forRange(OC, 32, (w, o0, o1) -> {
            for (int n = 0; n < N; n++) {
                Vec.addInto(vector, d.bb, o0, g.bb, n * OC + o0, o1 - o0);
            }
        });
    }

    void rows(Rows op, Tensor dense, Tensor table, int[] index, int N, int C, int tableRows) {
        Check.positive("N", N, "C", C, "tableRows", tableRows);
        CpuTensor d = of(dense).need((long) N * C, "N*C");
        CpuTensor t = of(table).need((long) tableRows * C, "tableRows*C");
        Tensors.needIndices(index, N, tableRows, "index");
        boolean vector = cx.vector;
        switch (op) {
            case GATHER -> cx.pool.forRange(N, Math.max(1, GRAIN / C), (w, lo, hi) -> {
                for (int n = lo; n < hi; n++) {
                    d.bb.put(n * C * 4, t.bb, index[n] * C * 4, C * 4);
                }
            });
            case GATHER_ADD -> cx.pool.forRange(N, Math.max(1, GRAIN / C), (w, lo, hi) -> {
                for (int n = lo; n < hi; n++) {
                    Vec.addInto(vector, d.bb, n * C, t.bb, index[n] * C, C);
                }
            });
            // chunks own column ranges; rows in order, so a repeated index sums exactly as the kernel does
            case SCATTER_ADD -> cx.pool.forRange(C, 16, (w, c0, c1) -> {
                for (int n = 0; n < N; n++) {
                    Vec.addInto(vector, t.bb, index[n] * C + c0, d.bb, n * C + c0, c1 - c0);
                }
            });
        }
    }
}
