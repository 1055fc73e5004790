package bitskip.model.infer;

import bitskip.engine.cpu.VectorFwht;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The per-row float operations of inference, on slices of flat arrays (offsets instead of whole arrays).
 * Each reproduces the order of float operations of its kernel in {@code bitskip.kernels} (LayerNorm,
 * Hadamard, Quantize, Activations, Attention's softmax), so a row computed here is bit-identical to the
 * same row computed by the reference kernels; {@code RowOpsTest} checks it. {@link #hadamardQuantize} is
 * the fused Hadamard path of H-BitLinear: LayerNorm, zero-pad, FWHT, absmax quantization of one row in one
 * pass over a scratch row, writing the int8 codes as shorts for {@link PackedGemm#ternary}.
 */
public final class RowOps {
    private RowOps() {}

    static final float MIN_SCALE = 1e-6f;

    /** out[oOff..+C) = LayerNorm(inp[iOff..+C)) with weight/bias (both null: parameter-free). */
    public static void layerNorm(float[] out, int oOff, float[] inp, int iOff, float[] weight, float[] bias, int C,
                                 float eps) {
        float m = mean(inp, iOff, C);
        layerNorm(out, oOff, inp, iOff, weight, bias, C, m, rstd(inp, iOff, C, m, eps));
    }

    /** The mean of inp[iOff..+C), summed in order as the reference LayerNorm. */
    static float mean(float[] inp, int iOff, int C) {
        float m = 0.0f;
        for (int c = 0; c < C; c++) {
            m += inp[iOff + c];
        }
        return m / C;
    }

    /** 1/sqrt(var + eps) of inp[iOff..+C) around its mean m, as the reference LayerNorm. */
    static float rstd(float[] inp, int iOff, int C, float m, float eps) {
        float var = 0.0f;
        for (int c = 0; c < C; c++) {
            float d = inp[iOff + c] - m;
            var += d * d;
        }
        return rstdOf(var, C, eps);
    }

    /** 1/sqrt(sq/C + eps) from a row's sum of squared deviations sq: the end of {@link #rstd} and of {@link #stats}. */
    private static float rstdOf(float sq, int C, float eps) {
        return (float) (1.0 / Math.sqrt(sq / C + eps));
    }

    /**
     * mean[i] and rstd[i] of rows i &lt; rows of x (row i from off + i·C), each exactly as {@link #mean} and
     * {@link #rstd}: the sums run in order, one dependent add after another, so a row alone waits on its adds; four
     * rows' sums interleaved in one loop overlap (verification's k + 1 rows, prefill), with the same bits.
     */
    static void stats(float[] x, int off, int C, int rows, float eps, float[] mean, float[] rstd) {
        int i = 0;
        for (; i + 3 < rows; i += 4) {
            int o0 = off + i * C, o1 = o0 + C, o2 = o1 + C, o3 = o2 + C;
            float m0 = 0.0f, m1 = 0.0f, m2 = 0.0f, m3 = 0.0f;
            for (int c = 0; c < C; c++) {
                m0 += x[o0 + c];
                m1 += x[o1 + c];
                m2 += x[o2 + c];
                m3 += x[o3 + c];
            }
            m0 = m0 / C;
            m1 = m1 / C;
            m2 = m2 / C;
            m3 = m3 / C;
            float v0 = 0.0f, v1 = 0.0f, v2 = 0.0f, v3 = 0.0f;
            for (int c = 0; c < C; c++) {
                float d0 = x[o0 + c] - m0, d1 = x[o1 + c] - m1, d2 = x[o2 + c] - m2, d3 = x[o3 + c] - m3;
                v0 += d0 * d0;
                v1 += d1 * d1;
                v2 += d2 * d2;
                v3 += d3 * d3;
            }
            mean[i] = m0;
            mean[i + 1] = m1;
            mean[i + 2] = m2;
            mean[i + 3] = m3;
            rstd[i] = rstdOf(v0, C, eps);
            rstd[i + 1] = rstdOf(v1, C, eps);
            rstd[i + 2] = rstdOf(v2, C, eps);
            rstd[i + 3] = rstdOf(v3, C, eps);
        }
        for (; i < rows; i++) {
            mean[i] = mean(x, off + i * C, C);
            rstd[i] = rstd(x, off + i * C, C, mean[i], eps);
        }
    }

    /** LayerNorm given the row's mean m and rstd s: rows normalized under several weights share m and s. */
    static void layerNorm(float[] out, int oOff, float[] inp, int iOff, float[] weight, float[] bias, int C, float m, float s) {
        for (int c = 0; c < C; c++) {
            float norm = (inp[iOff + c] - m) * s;
            out[oOff + c] = weight == null ? norm : norm * weight[c] + bias[c];
        }
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Short lanes of half F's width: one code per float lane. */
    private static final VectorSpecies<Short> CODE_LANES = VectorSpecies.of(short.class,
            jdk.incubator.vector.VectorShape.forBitSize(F.vectorBitSize() / 2));
    /** 1.5·2^23: (v + M) − M is v rounded to an integer, half to even (as Math.rint), for |v| <= 2^22. */
    private static final float RINT_MAGIC = 12582912.0f;

    /**
     * Per-token absmax quantization of x[xOff..+C) to bits: writes the codes to q[qOff..+C) (and zeros up to
     * qOff+Cp), returns s = max|x| clamped to >= 1e-6. Same operations as Quantize.activationForward, on vector
     * lanes: the maximum is exact in any order, (Q·x)/s is the same two IEEE operations, and Math.rint of a
     * value of at most Q (< 2^22) in magnitude is (v + 1.5·2^23) − 1.5·2^23 exactly.
     */
    public static float quantize(short[] q, int qOff, int Cp, float[] x, int xOff, int C, int bits) {
        float Q = (float) ((1 << (bits - 1)) - 1);
        int cb = F.loopBound(C), L = F.length();
        FloatVector mx = FloatVector.zero(F);
        for (int c = 0; c < cb; c += L) {
            mx = mx.max(FloatVector.fromArray(F, x, xOff + c).abs());
        }
        float s = mx.reduceLanes(VectorOperators.MAX);
        for (int c = cb; c < C; c++) {
            float a = Math.abs(x[xOff + c]);
            if (a > s) {
                s = a;
            }
        }
        if (s < MIN_SCALE) {
            s = MIN_SCALE;
        }
        // the codes on float lanes, narrowed on lanes too: an integer-valued float v with |v| < 2^22 plus 1.5·2^23
        // is exact and holds v's two's complement in its low bits, so its bits as an int, cut to 16 bits (I2S, as a
        // (short) cast), are v's code. JDK 17 does not compile F2S or F2I conversions to vector instructions
        // (measured: a 512-float row took 1.7 µs on them, 0.3 µs one by one, 0.04 µs this way).
        for (int c = 0; c < cb; c += L) {
            IntVector code = FloatVector.fromArray(F, x, xOff + c).mul(Q).div(s).add(RINT_MAGIC).sub(RINT_MAGIC).max(-Q).min(Q)
                    .add(RINT_MAGIC).reinterpretAsInts();
            ((ShortVector) code.convertShape(VectorOperators.I2S, CODE_LANES, 0)).intoArray(q, qOff + c);
        }
        for (int c = cb; c < C; c++) {
            float v = (float) Math.rint((Q * x[xOff + c]) / s);
            if (v > Q) {
                v = Q;
            } else if (v < -Q) {
                v = -Q;
            }
            q[qOff + c] = (short) v;
        }
        for (int c = C; c < Cp; c++) {
            q[qOff + c] = 0;
        }
        return s;
    }

    /**
     * The fused Hadamard path of one row: z = FWHT(pad(LayerNorm(x))) / sqrt(P) in scratch (P), then its
     * codes to q. Returns the absmax scale of z.
     */
    public static float hadamardQuantize(short[] q, int qOff, int Cp, float[] x, int xOff, int C, int P,
                                         float[] lnW, float[] lnB, float eps, int bits, float[] scratch) {
        float m = mean(x, xOff, C);
        return hadamardQuantize(q, qOff, Cp, x, xOff, C, P, lnW, lnB, m, rstd(x, xOff, C, m, eps), bits, scratch);
    }

    /**
     * The same given the row's LayerNorm mean m and rstd s: the q, k and v projections normalize the same row
     * under their own weights, and its two sums (in order, so one dependent add after another) are most of a
     * short row's cost.
     */
    static float hadamardQuantize(short[] q, int qOff, int Cp, float[] x, int xOff, int C, int P, float[] lnW,
                                  float[] lnB, float m, float s, int bits, float[] scratch) {
        layerNorm(scratch, 0, x, xOff, lnW, lnB, C, m, s);
        for (int p = C; p < P; p++) {
            scratch[p] = 0.0f;
        }
        fwht(scratch, P);
        return quantize(q, qOff, Cp, scratch, 0, P, bits);
    }

    /**
     * In-place orthonormal FWHT of a[0..P), natural order, as Hadamard.forward. Each butterfly is the same two
     * operations (x + y, x − y) on the same elements whichever order they run in, so vector lanes give
     * bit-identical results: a stage whose half width h spans whole vectors adds and subtracts vectors h apart;
     * a stage inside one vector pairs every lane with lane i XOR h (a fixed permutation) and keeps the sum in
     * the lanes whose bit h is 0 and the difference (partner − own) in the others.
     */
    public static void fwht(float[] a, int P) {
        float scale = (float) (1.0 / Math.sqrt(P));
        int L = F.length();
        int h = 1;
        if (P >= L) {
            VectorFwht.innerStages(a, 0, P); // P a power of two >= L, so whole vectors
            h = L;
        }
        for (; h < P; h *= 2) {
            if (h % L == 0) {
                for (int i = 0; i < P; i += 2 * h) {
                    for (int j = i; j < i + h; j += L) {
                        FloatVector x = FloatVector.fromArray(F, a, j), y = FloatVector.fromArray(F, a, j + h);
                        x.add(y).intoArray(a, j);
                        x.sub(y).intoArray(a, j + h);
                    }
                }
                continue;
            }
            for (int i = 0; i < P; i += 2 * h) {
                for (int j = i; j < i + h; j++) {
                    float x = a[j];
                    float y = a[j + h];
                    a[j] = x + y;
                    a[j + h] = x - y;
                }
            }
        }
        int pb = F.loopBound(P), p = 0;
        for (; p < pb; p += L) {
            FloatVector.fromArray(F, a, p).mul(scale).intoArray(a, p);
        }
        for (; p < P; p++) {
            a[p] = a[p] * scale;
        }
    }

    /**
     * y[base + o] = relu2^times((float) acc[base + o] · f) for o in [from, to): the scaling of an integer GEMM's
     * results, on lanes; the same IEEE operations per element as the scalar loop (an int converted to float,
     * one multiply; relu2 as {@code r = v > 0 ? v : 0; r·r}, the same for -0 and for every finite v).
     */
    static void scaleInts(float[] y, int[] acc, int base, int from, int to, float f, int times) {
        int o = from, L = F.length(), bound = from + (to - from) / L * L;
        for (; o < bound; o += L) {
            FloatVector v = ((FloatVector) IntVector.fromArray(I, acc, base + o).convertShape(VectorOperators.I2F, F, 0)).mul(f);
            for (int t = 0; t < times; t++) {
                FloatVector r = FloatVector.zero(F).blend(v, v.compare(VectorOperators.GT, 0.0f));
                v = r.mul(r);
            }
            v.intoArray(y, base + o);
        }
        for (; o < to; o++) {
            float v = acc[base + o] * f;
            for (int t = 0; t < times; t++) {
                float r = v > 0.0f ? v : 0.0f;
                v = r * r;
            }
            y[base + o] = v;
        }
    }

    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
}
