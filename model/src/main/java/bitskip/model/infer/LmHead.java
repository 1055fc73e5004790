package bitskip.model.infer;

import bitskip.engine.cpu.DnnlInt8;
import bitskip.kernels.Int8Head;
import java.util.Arrays;
import java.util.Locale;

/**
 * A language-model head of a deployed model: rows × C weights, one row per token it scores, stored as
 * <ul>
 *   <li>{@link Format#F32}: the trained float weights; logits by {@link PackedGemm#dense} (float products
 *       and sums in a fixed order per row);</li>
 *   <li>{@link Format#INT8}: per-row symmetric int8 weights, q = rint(127·w / max|w_row|) with the row's
 *       scale max|w_row| / 127 (one float per row), a quarter of the bytes. The input row is quantized per
 *       row to codes of ±{@link #xLevels} (absmax; 255, 9 bits, finer than the projections' 8, or 127, 8 bits,
 *       which oneDNN multiplies in half the instructions), the integer dot products are exact
 *       ({@link PackedGemm#int8}), and each logit is rounded once: logit = acc · (s_x / xLevels) · scale_row.
 *       Bit-identical to the scalar reference
 *       {@link Int8Head#forward}. The integer products run on one of two {@link Int8Kernel}s, with the same
 *       bits.</li>
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

    /**
     * Where the int8 head's exact integer products run: {@link PackedGemm#int8} (the Vector API, 16-bit
     * products) or {@link DnnlInt8} (oneDNN's int8 matmul on VNNI or AMX, a few times faster per row and nearly
     * flat in the number of rows). Chosen by {@code -Dbitskip.int8=auto|java|onednn} (default auto: oneDNN where
     * it can run exactly, see {@link DnnlInt8#unavailableReason}).
     */
    public enum Int8Kernel {
        JAVA, ONEDNN;

        public static final String PROPERTY = "bitskip.int8";

        /** The kernel the property asks for; onednn where oneDNN cannot run is an error naming the reason. */
        public static Int8Kernel chosen() {
            return Chosen.KERNEL;
        }

        /** The kernel of a {@value #PROPERTY} value: auto, java or onednn (refused with the reason where it cannot run). */
        public static Int8Kernel parse(String spec) {
            String why;
            switch (spec.toLowerCase(Locale.ROOT)) {
                case "java":
                    return JAVA;
                case "onednn":
                    why = DnnlInt8.unavailableReason();
                    if (why != null) {
                        throw new IllegalStateException("-D" + PROPERTY + "=onednn: " + why);
                    }
                    return ONEDNN;
                case "auto":
                    return DnnlInt8.unavailableReason() == null ? ONEDNN : JAVA;
                default:
                    throw new IllegalArgumentException("-D" + PROPERTY + "=" + spec + ": unknown int8 kernel; known: auto, java, onednn");
            }
        }

        /** Decided once, on the first int8 product (loading oneDNN costs a fraction of a second). */
        private static final class Chosen {
            static final Int8Kernel KERNEL = parse(System.getProperty(PROPERTY, "auto"));
        }
    }

    /** Default activation levels of the int8 head: codes in [-255, 255] (see {@link PackedGemm#INT8_X_MAX}). */
    public static final int X_LEVELS = Int8Head.X_LEVELS;
    /** Weight levels of the int8 head. */
    public static final int W_LEVELS = Int8Head.W_LEVELS;

    /** The activation levels of codes of the given bits: 9 → 255 (the default), 8 → 127. */
    public static int activationLevels(int bits) {
        if (bits == 9) {
            return Int8Head.X_LEVELS;
        }
        if (bits == 8) {
            return Int8Head.X_LEVELS_8;
        }
        throw new IllegalArgumentException("int8 head activation bits = " + bits + "; known: 8 (codes of ±127) and 9 (±255)");
    }

    /** Whether levels are activation levels an int8 head computes with: 255 (9 bits) or 127 (8 bits). */
    public static boolean knownActivationLevels(int levels) {
        return levels == Int8Head.X_LEVELS || levels == Int8Head.X_LEVELS_8;
    }

    /** INT8: the bits of the input rows' codes, 9 or 8 (the inverse of {@link #activationLevels}). */
    private int activationBits() {
        return xLevels == Int8Head.X_LEVELS ? 9 : 8;
    }

    public final Format format;
    public final int rows, C;
    /** INT8: the input rows' code levels, 255 (9 bits) or 127 (8 bits); 0 for F32. */
    public final int xLevels;
    /** F32: rows × C weights; null for INT8. */
    final float[] w;
    /** INT8: rows × C codes and one scale per row; null for F32. */
    final byte[] q;
    final float[] scale;
    /** INT8 on {@link Int8Kernel#ONEDNN}: oneDNN's copy of the codes, made by the first product that needs it. */
    private volatile DnnlInt8 onednn;

    private LmHead(Format format, int rows, int C, float[] w, byte[] q, float[] scale, int xLevels) {
        if (rows < 1 || C < 1) {
            throw new IllegalArgumentException("a head needs rows >= 1 and C >= 1, got " + rows + " x " + C);
        }
        this.format = format;
        this.rows = rows;
        this.C = C;
        this.w = w;
        this.q = q;
        this.scale = scale;
        this.xLevels = xLevels;
    }

    public static LmHead f32(float[] w, int rows, int C) {
        if (w.length != (long) rows * C) {
            throw new IllegalArgumentException("head weights hold " + w.length + " floats, expected " + rows + " x " + C);
        }
        return new LmHead(Format.F32, rows, C, w, null, null, 0);
    }

    /** An int8 head of codes q (rows × C), per-row scales and activation levels 255 or 127. */
    public static LmHead int8(byte[] q, float[] scale, int rows, int C, int xLevels) {
        if (q.length != (long) rows * C || scale.length != rows) {
            throw new IllegalArgumentException("int8 head holds " + q.length + " codes and " + scale.length
                    + " scales, expected " + rows + " x " + C + " and " + rows);
        }
        if (C >= 65536) {
            throw new IllegalArgumentException("int8 head: C = " + C + " is too wide for exact int32 sums");
        }
        if (!knownActivationLevels(xLevels)) {
            throw new IllegalArgumentException("int8 head activation levels = " + xLevels + "; known: 255 (9 bits) and 127 (8 bits)");
        }
        return new LmHead(Format.INT8, rows, C, null, q, scale, xLevels);
    }

    /**
     * The int8 form of float weights: per row, scale = max|w| / 127 and q = rint(w / scale) ({@link Int8Head#quantize}),
     * its input rows coded with xLevels.
     */
    public static LmHead quantize(float[] w, int rows, int C, int xLevels) {
        byte[] q = new byte[rows * C];
        float[] scale = new float[rows];
        Int8Head.quantize(q, scale, w, rows, C);
        return int8(q, scale, rows, C, xLevels);
    }

    /** This head in format f: itself, or its int8 quantization with 9-bit activations. */
    public LmHead as(Format f) {
        return as(f, X_LEVELS);
    }

    /**
     * This head in format f, an int8 head with activation levels xLevels (ignored for F32): itself, its int8
     * quantization, or its codes with other activation levels (an int8 head cannot go back to float).
     */
    public LmHead as(Format f, int xLevels) {
        if (f == Format.F32) {
            if (format == Format.F32) {
                return this;
            }
            throw new IllegalArgumentException("an int8 head cannot be turned back into a float head");
        }
        if (format == Format.F32) {
            return quantize(w, rows, C, xLevels);
        }
        return xLevels == this.xLevels ? this : int8(q, scale, rows, C, xLevels);
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
        return int8(sub, s, ids.length, C, xLevels);
    }

    /** "f32 head", or "int8 head with 9-bit activations" (or 8-bit): for reports. */
    public String describe() {
        return format == Format.F32 ? "f32 head" : "int8 head with " + activationBits() + "-bit activations";
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
        forward(out, x, xOff, N, par, format == Format.INT8 ? Int8Kernel.chosen() : Int8Kernel.JAVA);
    }

    /** {@link #forward} with the int8 products on the given kernel (the same bits on either). */
    public void forward(float[] out, float[] x, int xOff, int N, Parallel par, Int8Kernel kernel) {
        if (format == Format.F32) {
            PackedGemm.dense(out, x, xOff, w, N, C, rows, par);
            return;
        }
        Scratch sc = SCRATCH.get().fit(N * C, N * rows);
        short[] xq = sc.xq;
        int[] acc = sc.acc;
        float[] f = new float[N];
        int bits = activationBits(); // RowOps.quantize's levels are 2^(bits-1) - 1
        for (int n = 0; n < N; n++) {
            f[n] = RowOps.quantize(xq, n * C, C, x, xOff + n * C, C, bits) / xLevels;
        }
        if (kernel == Int8Kernel.ONEDNN) {
            // each thread scales the logits of its own column block right after its product
            DnnlInt8 d = onednn(par.threads());
            par.forRange(d.parts(), (long) N * C * rows, (from, to) -> {
                for (int p = from; p < to; p++) {
                    d.run(p, acc, xq, N);
                    scaleLogits(out, acc, f, N, d.start(p), d.start(p + 1));
                }
            });
        } else {
            PackedGemm.int8(acc, xq, q, N, C, rows, par);
            scaleLogits(out, acc, f, N, 0, rows);
        }
    }

    /** out = acc · f[n] · scale[o] for the N rows and the head rows [o0, o1): each logit rounded once per product. */
    private void scaleLogits(float[] out, int[] acc, float[] f, int N, int o0, int o1) {
        for (int n = 0; n < N; n++) {
            float fn = f[n];
            int base = n * rows;
            for (int o = o0; o < o1; o++) {
                out[base + o] = acc[base + o] * fn * scale[o];
            }
        }
    }

    /**
     * oneDNN's copy of the codes in one column block per thread of the first caller's pool (a later pool of another
     * size gets the same bits, only less evenly split).
     */
    private DnnlInt8 onednn(int threads) {
        DnnlInt8 d = onednn;
        if (d == null) {
            synchronized (this) {
                d = onednn;
                if (d == null) {
                    onednn = d = new DnnlInt8(q, rows, C, threads, xLevels);
                }
            }
        }
        return d;
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
        return format == o.format && rows == o.rows && C == o.C && xLevels == o.xLevels && Arrays.equals(w, o.w)
                && Arrays.equals(q, o.q) && Arrays.equals(scale, o.scale);
    }
}
