package bitskip.kernels;

/**
 * The orthonormal fast Walsh–Hadamard transform of H-BitLinear (MODEL.md section 2, paper Eq. 3), applied to
 * each row of an (N, P) array, P a power of two, in natural (Sylvester) order: {@code z = H_P·u / sqrt(P)}
 * with {@code H_1 = [1]}, {@code H_2k = [[H_k, H_k], [H_k, -H_k]]}. Rows of width C are first zero-padded
 * on the right to {@code P = nextPow2(C)}.
 *
 * <p>The scaled transform is symmetric and orthonormal, hence its own inverse and its own transpose: the
 * backward pass is the same transform applied to the incoming gradient.
 */
public final class Hadamard {
    private Hadamard() {}

    /** The smallest power of two {@code >= n} (n >= 1): the padded width P of a row of width n. */
    public static int nextPow2(int n) {
        Check.positive("n", n);
        Check.arg(n <= (1 << 30), "n", n, "must be at most 2^30 (the largest int power of two)");
        int p = 1;
        while (p < n) {
            p *= 2;
        }
        return p;
    }

    /** Overwrites out (N, P) with inp (N, C) zero-padded on the right; P a power of two, P >= C. */
    public static void padForward(float[] out, float[] inp, int N, int C, int P) {
        checkPad(N, C, P);
        Check.len(out, "out", (long) N * P, "N*P");
        Check.len(inp, "inp", (long) N * C, "N*C");
        for (int n = 0; n < N; n++) {
            for (int p = 0; p < P; p++) {
                out[n * P + p] = p < C ? inp[n * C + p] : 0.0f;
            }
        }
    }

    /** Accumulates dinp (N, C) += the first C columns of dout (N, P); the padding columns have no input. */
    public static void padBackward(float[] dinp, float[] dout, int N, int C, int P) {
        checkPad(N, C, P);
        Check.len(dinp, "dinp", (long) N * C, "N*C");
        Check.len(dout, "dout", (long) N * P, "N*P");
        for (int n = 0; n < N; n++) {
            for (int c = 0; c < C; c++) {
                dinp[n * C + c] += dout[n * P + c];
            }
        }
    }

    /**
     * Overwrites each row of out (N, P) with the orthonormal FWHT of the same row of inp (N, P). out may be
     * the same array as inp (in place). The order of operations (butterflies with h = 1, 2, 4, ..., then one
     * multiplication by the float 1/sqrt(P)) is part of the contract: other backends reproduce it bit for bit.
     */
    public static void forward(float[] out, float[] inp, int N, int P) {
        Check.positive("N", N, "P", P);
        checkPow2(P);
        Check.len(out, "out", (long) N * P, "N*P");
        Check.len(inp, "inp", (long) N * P, "N*P");
        float scale = (float) (1.0 / Math.sqrt(P));
        for (int n = 0; n < N; n++) {
            int row = n * P;
            // Copy, then transform out in place (a no-op copy when out == inp).
            for (int p = 0; p < P; p++) {
                out[row + p] = inp[row + p];
            }
            // Iterative radix-2 butterflies: after the stage of width h, each block of 2h elements holds
            // H_2h times its input block, so the last stage leaves the unnormalized H_P·x in natural order.
            for (int h = 1; h < P; h *= 2) {
                for (int i = 0; i < P; i += 2 * h) {
                    for (int j = i; j < i + h; j++) {
                        float a = out[row + j];
                        float b = out[row + j + h];
                        out[row + j] = a + b;
                        out[row + j + h] = a - b;
                    }
                }
            }
            // One scaling at the end (not 1/sqrt(2) per stage) makes the transform orthonormal.
            for (int p = 0; p < P; p++) {
                out[row + p] = out[row + p] * scale;
            }
        }
    }

    /**
     * Accumulates dinp (N, P) += H·dout: the scaled transform is symmetric, so its Jacobian transpose is
     * itself. scratch (N, P) is overwritten with H·dout (it may be dout itself when dout is no longer needed).
     */
    public static void backward(float[] dinp, float[] dout, float[] scratch, int N, int P) {
        Check.positive("N", N, "P", P);
        checkPow2(P);
        Check.len(dinp, "dinp", (long) N * P, "N*P");
        Check.len(dout, "dout", (long) N * P, "N*P");
        Check.len(scratch, "scratch", (long) N * P, "N*P");
        forward(scratch, dout, N, P);
        for (int i = 0; i < N * P; i++) {
            dinp[i] += scratch[i];
        }
    }

    private static void checkPad(int N, int C, int P) {
        Check.positive("N", N, "C", C, "P", P);
        checkPow2(P);
        Check.arg(P >= C, "P", P, "must be >= C = " + C + " (the row is padded, never truncated)");
    }

    private static void checkPow2(int P) {
        Check.arg((P & (P - 1)) == 0, "P", P, "must be a power of two");
    }
}
