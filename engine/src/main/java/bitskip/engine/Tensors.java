package bitskip.engine;

/** Argument checks every backend shares: a tensor long enough, named in the message. */
public final class Tensors {
    private Tensors() {}

    /** Requires t to hold at least n floats; {@code what} says where n comes from ("N*C", "dinp N*C"). */
    public static Tensor need(Tensor t, long n, String what) {
        if (t == null) {
            throw new IllegalArgumentException("argument " + what + " is null; expected " + n + " floats");
        }
        if (t.size() < n) {
            throw new IllegalArgumentException("tensor " + t.name() + " has " + t.size() + " floats, expected at least "
                    + n + " (" + what + ")");
        }
        return t;
    }

    /** The index array must hold n entries, each in [0, rows): the token ids and position rows of Backend.rows. */
    public static void needIndices(int[] index, int n, int rows, String what) {
        if (index == null || index.length < n) {
            throw new IllegalArgumentException("argument " + what + " (int[]) has length "
                    + (index == null ? "null" : index.length) + ", expected at least " + n);
        }
        for (int i = 0; i < n; i++) {
            if (index[i] < 0 || index[i] >= rows) {
                throw new IllegalArgumentException("argument " + what + "[" + i + "] = " + index[i]
                        + ": must be in [0, " + rows + ")");
            }
        }
    }
}
