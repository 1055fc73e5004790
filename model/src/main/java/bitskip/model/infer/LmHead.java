package bitskip.model.infer;

import bitskip.kernels.Int8Head;
import java.util.Arrays;

/**
 * A language-model head of a deployed model: rows × C weights, one row per token it scores, stored as
 * <ul>
 *   <li>{@link Format#F32}: the trained float weights; logits by {@link PackedGemm#dense} (float products
 *       and sums in a fixed order per row);</li>
 *   <li>{@link Format#INT8}: per-row symmetric int8 weights, q = rint(127·w / max|w_row|) with the row's
 *       scale max|w_row| / 127 (one float per row), a quarter of the bytes. The input row is quantized per
 *       row to codes of ±{@link #X_LEVELS} (absmax, 9 bits, finer than the projections' 8), the integer dot
 *       products are exact ({@link PackedGemm#int8}), and each logit is rounded once:
 *       logit = acc · (s_x / 255) · scale_row. Bit-identical to the scalar reference
 *       {@link Int8Head#forward}.</li>
 * </ul>
 * The result of a row never depends on the number of rows computed with it or on the thread count. A head
 * may also be a subset of another head's rows ({@link #rows(int[])}), the draft head of self-speculation.
 */
public final class LmHead {
    /** How the weights are stored. */
    public enum Format {
        F32("f32"), INT8("int8");

        public final String id;

        Format(String id) {
            this.id = id;
        }

        public static Format of(String s) {
            for (Format f : values()) {
                if (f.id.equalsIgnoreCase(s)) {
                    return f;
                }
            }
            throw new IllegalArgumentException("unknown head format '" + s + "'; known: f32, int8");
        }
    }

    /** Activation levels of the int8 head: codes in [-255, 255] (see {@link PackedGemm#INT8_X_MAX}). */
    public static final int X_LEVELS = Int8Head.X_LEVELS;
    /** {@link RowOps#quantize}'s bits for {@link #X_LEVELS} (2^(9-1) - 1 = 255). */
    private static final int X_BITS = 9;
    /** Weight levels of the int8 head. */
    public static final int W_LEVELS = Int8Head.W_LEVELS;

    public final Format format;
    public final int rows, C;
    /** F32: rows × C weights; null for INT8. */
    final float[] w;
    /** INT8: rows × C codes and one scale per row; null for F32. */
    final byte[] q;
    final float[] scale;

    private LmHead(Format format, int rows, int C, float[] w, byte[] q, float[] scale) {
        if (rows < 1 || C < 1) {
            throw new IllegalArgumentException("a head needs rows >= 1 and C >= 1, got " + rows + " x " + C);
        }
        this.format = format;
        this.rows = rows;
        this.C = C;
        this.w = w;
        this.q = q;
        this.scale = scale;
    }

    public static LmHead f32(float[] w, int rows, int C) {
        if (w.length != (long) rows * C) {
            throw new IllegalArgumentException("head weights hold " + w.length + " floats, expected " + rows + " x " + C);
        }
        return new LmHead(Format.F32, rows, C, w, null, null);
    }

    public static LmHead int8(byte[] q, float[] scale, int rows, int C) {
        if (q.length != (long) rows * C || scale.length != rows) {
            throw new IllegalArgumentException("int8 head holds " + q.length + " codes and " + scale.length
                    + " scales, expected " + rows + " x " + C + " and " + rows);
        }
        if (C >= 65536) {
            throw new IllegalArgumentException("int8 head: C = " + C + " is too wide for exact int32 sums");
        }
        return new LmHead(Format.INT8, rows, C, null, q, scale);
    }

    /** The int8 form of float weights: per row, scale = max|w| / 127 and q = rint(w / scale) ({@link Int8Head#quantize}). */
    public static LmHead quantize(float[] w, int rows, int C) {
        byte[] q = new byte[rows * C];
        float[] scale = new float[rows];
        Int8Head.quantize(q, scale, w, rows, C);
        return int8(q, scale, rows, C);
    }

    /** This head in format f: itself, or its int8 quantization (an int8 head cannot go back to float). */
    public LmHead as(Format f) {
        if (f == format) {
            return this;
        }
        if (f == Format.INT8) {
            return quantize(w, rows, C);
        }
        throw new IllegalArgumentException("an int8 head cannot be turned back into a float head");
    }

    /** A head of the given rows of this one, in this format (ids ascending, each in [0, rows)). */
    public LmHead rows(int[] ids) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= rows || i > 0 && ids[i] <= ids[i - 1]) {
                throw new IllegalArgumentException("head row ids must be ascending and in [0, " + rows + "), got "
                        + ids[i] + " at index " + i);
            }
        }
        if (format == Format.F32) {
            float[] sub = new float[ids.length * C];
            for (int i = 0; i < ids.length; i++) {
                System.arraycopy(w, ids[i] * C, sub, i * C, C);
            }
            return f32(sub, ids.length, C);
        }
        byte[] sub = new byte[ids.length * C];
        float[] s = new float[ids.length];
        for (int i = 0; i < ids.length; i++) {
            System.arraycopy(q, ids[i] * C, sub, i * C, C);
            s[i] = scale[ids[i]];
        }
        return int8(sub, s, ids.length, C);
    }

    /** Bytes of weights (and scales) one pass over this head reads. */
    public long bytes() {
        return format == Format.F32 ? 4L * rows * C : (long) rows * C + 4L * rows;
    }

    /** The float weights (F32 only). */
    public float[] weights() {
        requireFormat(Format.F32);
        return w;
    }

    /** The int8 codes (INT8 only). */
    public byte[] codes() {
        requireFormat(Format.INT8);
        return q;
    }

    /** The per-row scales (INT8 only). */
    public float[] scales() {
        requireFormat(Format.INT8);
        return scale;
    }

    private void requireFormat(Format f) {
        if (format != f) {
            throw new IllegalStateException("the head is " + format.id + ", not " + f.id);
        }
    }

    /** out (N × rows) = this head on the N rows of x (N × C from xOff). */
    public void forward(float[] out, float[] x, int xOff, int N, Parallel par) {
        if (format == Format.F32) {
            PackedGemm.dense(out, x, xOff, w, N, C, rows, par);
            return;
        }
        Scratch sc = SCRATCH.get().fit(N * C, N * rows);
        short[] xq = sc.xq;
        int[] acc = sc.acc;
        float[] f = new float[N];
        for (int n = 0; n < N; n++) {
            f[n] = RowOps.quantize(xq, n * C, C, x, xOff + n * C, C, X_BITS) / X_LEVELS;
        }
        PackedGemm.int8(acc, xq, q, N, C, rows, par);
        for (int n = 0; n < N; n++) {
            float fn = f[n];
            int base = n * rows;
            for (int o = 0; o < rows; o++) {
                out[base + o] = acc[base + o] * fn * scale[o];
            }
        }
    }

    /** Per-thread buffers of the int8 path (grow, never shrink): decoding calls it once per token. */
    private static final class Scratch {
        short[] xq = new short[0];
        int[] acc = new int[0];

        Scratch fit(int nx, int nacc) {
            if (xq.length < nx) {
                xq = new short[nx];
            }
            if (acc.length < nacc) {
                acc = new int[nacc];
            }
            return this;
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** Whether two heads hold the same format, shape and bits (for tests). */
    boolean sameAs(LmHead o) {
        return format == o.format && rows == o.rows && C == o.C && Arrays.equals(w, o.w) && Arrays.equals(q, o.q)
                && Arrays.equals(scale, o.scale);
    }
}
