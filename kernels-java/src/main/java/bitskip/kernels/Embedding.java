package bitskip.kernels;

/**
 * Token embedding lookup, and the learned absolute position table the {@code reference} profile adds to it.
 * wte is (V, C), tokens (N) are ids in [0, V), out is (N, C). wpe is (maxT, C); time step t of a sequence
 * reads row pos0 + t (pos0 is nonzero when a sequence continues an earlier one, as in cached decoding).
 */
public final class Embedding {
    private Embedding() {}

    /** Overwrites out (N, C) with the rows of wte named by tokens. Every token is checked before any write. */
    public static void forward(float[] out, int[] tokens, float[] wte, int N, int C, int V) {
        gather(out, tokens, wte, "wte", N, C, V, false);
    }

    /** Accumulates out (N, C) += the rows of table (V, C) named by index: a gather that adds. */
    public static void forwardAdd(float[] out, int[] index, float[] table, int N, int C, int V) {
        gather(out, index, table, "table", N, C, V, true);
    }

    private static void gather(float[] out, int[] index, float[] table, String tableName, int N, int C, int V,
                               boolean add) {
        Check.positive("N", N, "C", C, "V", V);
        Check.len(out, "out", (long) N * C, "N*C");
        Check.len(table, tableName, (long) V * C, "V*C");
        checkTokens(index, N, V);
        for (int n = 0; n < N; n++) {
            int row = index[n] * C;
            for (int c = 0; c < C; c++) {
                out[n * C + c] = add ? out[n * C + c] + table[row + c] : table[row + c];
            }
        }
    }

    /**
     * Accumulates dwte[tokens[n]] += dout[n] (a scatter-add: a token seen several times sums its rows).
     * The tokens are checked again here because a bad id would otherwise write into another row silently.
     */
    public static void backward(float[] dwte, float[] dout, int[] tokens, int N, int C, int V) {
        Check.positive("N", N, "C", C, "V", V);
        Check.len(dwte, "dwte", (long) V * C, "V*C");
        Check.len(dout, "dout", (long) N * C, "N*C");
        checkTokens(tokens, N, V);
        // Sequential over n: on a parallel backend two rows with the same token race on one dwte row.
        for (int n = 0; n < N; n++) {
            int row = tokens[n] * C;
            for (int c = 0; c < C; c++) {
                dwte[row + c] += dout[n * C + c];
            }
        }
    }

    /**
     * Adds the position rows in place: out (B, T, C) += wpe[pos0 + t]. Unlike the other forwards this one
     * accumulates, because it is applied on top of the token embedding already in out.
     */
    public static void positionsForward(float[] out, float[] wpe, int B, int T, int C, int pos0, int maxT) {
        checkPositions(out, "out", wpe, "wpe", B, T, C, pos0, maxT);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                int o = (b * T + t) * C;
                int p = (pos0 + t) * C;
                for (int c = 0; c < C; c++) {
                    out[o + c] += wpe[p + c];
                }
            }
        }
    }

    /** Accumulates dwpe[pos0 + t] += Σ_b dout[b, t]; rows outside [pos0, pos0 + T) are untouched. */
    public static void positionsBackward(float[] dwpe, float[] dout, int B, int T, int C, int pos0, int maxT) {
        checkPositions(dout, "dout", dwpe, "dwpe", B, T, C, pos0, maxT);
        // rows b of (B, T·C): each (t, c) summed over the batch first, then added to row pos0 + t
        Matmul.sumRows(dwpe, pos0 * C, dout, B, T * C);
    }

    private static void checkTokens(int[] tokens, int N, int V) {
        Check.len(tokens, "tokens", N, "N");
        for (int n = 0; n < N; n++) {
            int tok = tokens[n];
            if (tok < 0 || tok >= V) {
                Check.arg(false, "tokens[" + n + "]", tok, "token id must be in [0, V) with V = " + V);
            }
        }
    }

    private static void checkPositions(float[] act, String actName, float[] table, String tableName,
                                       int B, int T, int C, int pos0, int maxT) {
        Check.positive("B", B, "T", T, "C", C, "maxT", maxT);
        Check.len(act, actName, (long) B * T * C, "B*T*C");
        Check.len(table, tableName, (long) maxT * C, "maxT*C");
        Check.arg(pos0 >= 0, "pos0", pos0, "must be non-negative");
        Check.arg((long) pos0 + T <= maxT, "pos0", pos0,
                "pos0 + T = " + ((long) pos0 + T) + " exceeds maxT = " + maxT + " (the position table's rows)");
    }
}
