package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Kernels that work on whole rows, one work-item per row with the row's loop sequential in the reference's
 * order: LayerNorm, the per-token activation quantizer, the in-place fast Walsh-Hadamard transform, and the
 * causal softmax of attention's score rows and its backward.
 */
final class RowKernels {
    private RowKernels() {}

    /**
     * LayerNorm of N rows of C (kernels-java LayerNorm.forward): saves mean and rstd. a = (out, mean, rstd,
     * inp, weight, bias, hasWeight, N, C); f = (eps).
     */
    static void layerNormForward(FloatArray m, IntArray a, FloatArray f) {
        int out = a.get(0), mean = a.get(1), rstd = a.get(2), inp = a.get(3), weight = a.get(4), bias = a.get(5);
        boolean hasWeight = a.get(6) != 0;
        int C = a.get(8);
        float eps = f.get(0);
        for (@Parallel int n = 0; n < a.get(7); n++) {
            int row = inp + n * C;
            float mu = 0.0f;
            for (int c = 0; c < C; c++) {
                mu += m.get(row + c);
            }
            mu = mu / C;
            float var = 0.0f;
            for (int c = 0; c < C; c++) {
                float d = m.get(row + c) - mu;
                var += d * d;
            }
            var = var / C;
            float s = (float) (1.0 / Math.sqrt((double) (var + eps)));
            for (int c = 0; c < C; c++) {
                float norm = (m.get(row + c) - mu) * s;
                m.set(out + n * C + c, hasWeight ? norm * m.get(weight + c) + m.get(bias + c) : norm);
            }
            m.set(mean + n, mu);
            m.set(rstd + n, s);
        }
    }

    /** dinp += the LayerNorm input gradient, per row. a = (dinp, dout, inp, weight, hasWeight, mean, rstd, N, C). */
    static void layerNormBackwardInput(FloatArray m, IntArray a) {
        int dinp = a.get(0), dout = a.get(1), inp = a.get(2), weight = a.get(3), mean = a.get(5), rstd = a.get(6);
        boolean hasWeight = a.get(4) != 0;
        int C = a.get(8);
        for (@Parallel int n = 0; n < a.get(7); n++) {
            int row = n * C;
            float mu = m.get(mean + n), s = m.get(rstd + n);
            float dnormMean = 0.0f, dnormNormMean = 0.0f;
            for (int c = 0; c < C; c++) {
                float norm = (m.get(inp + row + c) - mu) * s;
                float dnorm = hasWeight ? m.get(dout + row + c) * m.get(weight + c) : m.get(dout + row + c);
                dnormMean += dnorm;
                dnormNormMean += dnorm * norm;
            }
            dnormMean = dnormMean / C;
            dnormNormMean = dnormNormMean / C;
            for (int c = 0; c < C; c++) {
                float norm = (m.get(inp + row + c) - mu) * s;
                float dnorm = hasWeight ? m.get(dout + row + c) * m.get(weight + c) : m.get(dout + row + c);
                int at = dinp + row + c;
                m.set(at, m.get(at) + s * (dnorm - dnormMean - norm * dnormNormMean));
            }
        }
    }

    /** dweight[c] += Σ_n dout·norm, dbias[c] += Σ_n dout, rows in order. a = (dweight, dbias, dout, inp, mean, rstd, N, C). */
    static void layerNormBackwardParams(FloatArray m, IntArray a) {
        int dweight = a.get(0), dbias = a.get(1), dout = a.get(2), inp = a.get(3), mean = a.get(4), rstd = a.get(5);
        int N = a.get(6), C = a.get(7);
        for (@Parallel int c = 0; c < C; c++) {
            float dw = m.get(dweight + c), db = m.get(dbias + c);
            for (int n = 0; n < N; n++) {
                float norm = (m.get(inp + n * C + c) - m.get(mean + n)) * m.get(rstd + n);
                dw += m.get(dout + n * C + c) * norm;
                db += m.get(dout + n * C + c);
            }
            m.set(dweight + c, dw);
            m.set(dbias + c, db);
        }
    }

    /**
     * Per-token absmax quantization to Q levels (kernels-java Quantize.activationForward): x̂ = s·q/Q with q
     * = rint(Q·x/s) clamped to ±Q; saves s. a = (out, scale, inp, N, C); f = (Q).
     */
    static void activationQuantize(FloatArray m, IntArray a, FloatArray f) {
        int out = a.get(0), scale = a.get(1), inp = a.get(2), C = a.get(4);
        float Q = f.get(0);
        for (@Parallel int n = 0; n < a.get(3); n++) {
            int row = n * C;
            float s = 0.0f;
            for (int c = 0; c < C; c++) {
                float v = Math.abs(m.get(inp + row + c));
                if (v > s) {
                    s = v;
                }
            }
            if (s < 1e-6f) {
                s = 1e-6f;
            }
            for (int c = 0; c < C; c++) {
                float q = roundHalfEven((Q * m.get(inp + row + c)) / s);
                if (q > Q) {
                    q = Q;
                } else if (q < -Q) {
                    q = -Q;
                }
                m.set(out + row + c, (s * q) / Q);
            }
            m.set(scale + n, s);
        }
    }

    /**
     * Math.rint for floats: TornadoVM 5.2.0's OpenCL backend cannot compile Math.rint (it lowers to a
     * bit reinterpretation it does not implement), so round half to even from floor: x − floor(x) is exact
     * in float, and a float of magnitude 2^23 or more is already an integer (fraction 0).
     */
    static float roundHalfEven(float x) {
        float fl = TornadoMath.floor(x);
        float frac = x - fl;
        if (frac > 0.5f || (frac == 0.5f && (((int) fl) & 1) != 0)) {
            fl = fl + 1.0f;
        }
        return fl;
    }

    /**
     * In-place orthonormal fast Walsh-Hadamard transform of each of N rows of P (a power of two), one
     * work-item per row, with the butterflies in the reference's order (h = 1, 2, 4, …) and one scaling by
     * f0 = 1/sqrt(P) at the end (kernels-java Hadamard). a = (x, N, P).
     */
    static void fwhtRows(FloatArray m, IntArray a, FloatArray f) {
        int x = a.get(0), P = a.get(2);
        float scale = f.get(0);
        for (@Parallel int n = 0; n < a.get(1); n++) {
            int row = x + n * P;
            for (int h = 1; h < P; h *= 2) {
                for (int i = 0; i < P; i += 2 * h) {
                    for (int j = i; j < i + h; j++) {
                        float u = m.get(row + j), v = m.get(row + j + h);
                        m.set(row + j, u + v);
                        m.set(row + j + h, u - v);
                    }
                }
            }
            for (int p = 0; p < P; p++) {
                m.set(row + p, m.get(row + p) * scale);
            }
        }
    }

    /**
     * Causal softmax in place on rows of (T, T) blocks (Attention.softmaxRows): row r keeps its first
     * (r mod T) + 1 entries, max-shifted, exponentiated in double, normalized; the others become 0. a = (x,
     * rows, T).
     */
    static void softmaxRows(FloatArray m, IntArray a) {
        int x = a.get(0), T = a.get(2);
        for (@Parallel int r = 0; r < a.get(1); r++) {
            softmaxRow(m, x + r * T, r % T + 1, T);
        }
    }

    /** One row of T from `row`: the softmax of its first len entries in place, 0 after (also attention's). */
    static void softmaxRow(FloatArray m, int row, int len, int T) {
        float mx = Float.NEGATIVE_INFINITY;
        for (int s = 0; s < len; s++) {
            if (m.get(row + s) > mx) {
                mx = m.get(row + s);
            }
        }
        float sum = 0.0f;
        for (int s = 0; s < len; s++) {
            float e = (float) Math.exp((double) (m.get(row + s) - mx));
            m.set(row + s, e);
            sum += e;
        }
        float inv = 1.0f / sum;
        for (int s = 0; s < len; s++) {
            m.set(row + s, m.get(row + s) * inv);
        }
        for (int s = len; s < T; s++) {
            m.set(row + s, 0.0f);
        }
    }

    /**
     * The causal softmax's backward in place on d (Attention.softmaxBackwardRows): the first (r mod T) + 1
     * entries of row r become p_s·(d_s − Σ_u p_u·d_u)·scale, the others 0. a = (d, p, rows, T); f = (scale).
     */
    static void softmaxBackwardRows(FloatArray m, IntArray a, FloatArray f) {
        int d = a.get(0), p = a.get(1), T = a.get(3);
        float scale = f.get(0);
        for (@Parallel int r = 0; r < a.get(2); r++) {
            softmaxBackwardRow(m, d + r * T, p + r * T, r % T + 1, T, scale);
        }
    }

    /** One row of {@link #softmaxBackwardRows} (also attention's): its first len entries, 0 after. */
    static void softmaxBackwardRow(FloatArray m, int d, int p, int len, int T, float scale) {
        float pdp = 0.0f;
        for (int s = 0; s < len; s++) {
            pdp += m.get(p + s) * m.get(d + s);
        }
        for (int s = 0; s < len; s++) {
            m.set(d + s, m.get(p + s) * (m.get(d + s) - pdp) * scale);
        }
        for (int s = len; s < T; s++) {
            m.set(d + s, 0.0f);
        }
    }
}
