package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Gathers and scatters driven by indices: the token and position embeddings, the per-sample selection of
 * layer skipping, and the zero-padding of the Hadamard transform. Integer inputs (token ids, skip flags)
 * arrive in {@code ints}, a staging array written by the host for the launch. Scatter-adds run one
 * work-item per destination column and loop over the rows in the reference's order, so repeated ids sum
 * in the same order as kernels-java and no two work-items write the same element.
 */
final class IndexKernels {
    private IndexKernels() {}

    /** out[n, c] = wte[tokens[n], c]. a = (out, wte, N, C). */
    static void embeddingForward(FloatArray m, IntArray a, IntArray ints) {
        int out = a.get(0), wte = a.get(1), C = a.get(3);
        for (@Parallel int i = 0; i < a.get(2) * C; i++) {
            int n = i / C, c = i - n * C;
            m.set(out + i, m.get(wte + ints.get(n) * C + c));
        }
    }

    /** dwte[tokens[n], c] += dout[n, c], rows in order. a = (dwte, dout, N, C). */
    static void embeddingBackward(FloatArray m, IntArray a, IntArray ints) {
        int dwte = a.get(0), dout = a.get(1), N = a.get(2), C = a.get(3);
        for (@Parallel int c = 0; c < C; c++) {
            for (int n = 0; n < N; n++) {
                int at = dwte + ints.get(n) * C + c;
                m.set(at, m.get(at) + m.get(dout + n * C + c));
            }
        }
    }

    /** out[b, t, c] += wpe[pos0 + t, c]. a = (out, wpe, B, T, C, pos0). */
    static void positionsForward(FloatArray m, IntArray a) {
        int out = a.get(0), wpe = a.get(1), T = a.get(3), C = a.get(4), pos0 = a.get(5);
        for (@Parallel int i = 0; i < a.get(2) * T * C; i++) {
            int c = i % C, t = (i / C) % T;
            m.set(out + i, m.get(out + i) + m.get(wpe + (pos0 + t) * C + c));
        }
    }

    /** dwpe[pos0 + t, c] += Σ_b dout[b, t, c] (float, b in order). a = (dwpe, dout, B, T, C, pos0). */
    static void positionsBackward(FloatArray m, IntArray a) {
        int dwpe = a.get(0), dout = a.get(1), B = a.get(2), T = a.get(3), C = a.get(4), pos0 = a.get(5);
        for (@Parallel int i = 0; i < T * C; i++) {
            int t = i / C, c = i - t * C;
            float acc = 0.0f;
            for (int b = 0; b < B; b++) {
                acc += m.get(dout + (b * T + t) * C + c);
            }
            int at = dwpe + (pos0 + t) * C + c;
            m.set(at, m.get(at) + acc);
        }
    }

    /** out = skip[b] != 0 ? skipped : computed, per sample of `rows` floats. a = (out, computed, skipped, B, rows). */
    static void selectSamples(FloatArray m, IntArray a, IntArray ints) {
        int out = a.get(0), computed = a.get(1), skipped = a.get(2), rows = a.get(4);
        for (@Parallel int i = 0; i < a.get(3) * rows; i++) {
            m.set(out + i, ints.get(i / rows) != 0 ? m.get(skipped + i) : m.get(computed + i));
        }
    }

    /** dcomputed = d where not skipped (else 0); dskipped += d where skipped. a = (dc, ds, d, B, rows). */
    static void selectSamplesBackward(FloatArray m, IntArray a, IntArray ints) {
        int dc = a.get(0), ds = a.get(1), d = a.get(2), rows = a.get(4);
        for (@Parallel int i = 0; i < a.get(3) * rows; i++) {
            if (ints.get(i / rows) != 0) {
                m.set(dc + i, 0.0f);
                m.set(ds + i, m.get(ds + i) + m.get(d + i));
            } else {
                m.set(dc + i, m.get(d + i));
            }
        }
    }

    /** out (N, P) = inp (N, C) padded with zeros. a = (out, inp, N, C, P). */
    static void padForward(FloatArray m, IntArray a) {
        int out = a.get(0), inp = a.get(1), C = a.get(3), P = a.get(4);
        for (@Parallel int i = 0; i < a.get(2) * P; i++) {
            int n = i / P, p = i - n * P;
            m.set(out + i, p < C ? m.get(inp + n * C + p) : 0.0f);
        }
    }

    /** dinp (N, C) += dout (N, P)[:, :C]. a = (dinp, dout, N, C, P). */
    static void padBackward(FloatArray m, IntArray a) {
        int dinp = a.get(0), dout = a.get(1), C = a.get(3), P = a.get(4);
        for (@Parallel int i = 0; i < a.get(2) * C; i++) {
            int n = i / C, c = i - n * C;
            m.set(dinp + i, m.get(dinp + i) + m.get(dout + n * P + c));
        }
    }
}
