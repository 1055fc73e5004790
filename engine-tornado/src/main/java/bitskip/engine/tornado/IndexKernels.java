package bitskip.engine.tornado;

import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Indexed row copies between a dense (N, C) tensor and the rows of a table (the token embedding, its
 * gradient, the position table): the indices arrive in {@code ints}, a staging array the host writes for
 * the launch. The scatter-add runs one work-item per column, looping over the rows in order, so an index
 * seen twice sums in the reference's order and no two work-items write the same element.
 */
final class IndexKernels {
    private IndexKernels() {}

    /** dense[n, c] = (add ? dense[n, c] : 0) + table[index[n], c], one work-item per element. a = (dense, table, N, C, add). */
    static void gather(FloatArray m, IntArray a, IntArray ints) {
        int dense = a.get(0), table = a.get(1), C = a.get(3);
        boolean add = a.get(4) != 0;
        for (@Parallel int i = 0; i < a.get(2) * C; i++) {
            int n = i / C, c = i - n * C;
            float v = m.get(table + ints.get(n) * C + c);
            m.set(dense + i, add ? m.get(dense + i) + v : v);
        }
    }

    /** table[index[n], c] += dense[n, c] for n in order, one work-item per column. a = (table, dense, N, C). */
    static void scatterAdd(FloatArray m, IntArray a, IntArray ints) {
        int table = a.get(0), dense = a.get(1), N = a.get(2), C = a.get(3);
        for (@Parallel int c = 0; c < C; c++) {
            for (int n = 0; n < N; n++) {
                int at = table + ints.get(n) * C + c;
                m.set(at, m.get(at) + m.get(dense + n * C + c));
            }
        }
    }
}
