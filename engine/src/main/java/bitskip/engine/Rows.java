package bitskip.engine;

/**
 * The indexed row copies of {@link Backend#rows}, between a dense (N, C) tensor and the rows of a table
 * picked by an index per dense row: the token embedding, its gradient, and the learned position table.
 */
public enum Rows {
    /** dense[n] = table[index[n]]. */
    GATHER,
    /** dense[n] += table[index[n]]. */
    GATHER_ADD,
    /** table[index[n]] += dense[n], for n in increasing order (an index seen twice sums in that order). */
    SCATTER_ADD
}
