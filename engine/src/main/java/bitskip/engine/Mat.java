package bitskip.engine;

/**
 * One operand of {@link Backend#gemm}: a row-major matrix stored in {@code tensor} from element
 * {@code offset} on, {@code ld} elements from one row to the next, used as it is or transposed. A block of
 * a larger matrix (a chunk of rows, one attention head of a (T, NH·HS) activation) is an offset and the
 * larger matrix's row length.
 */
public record Mat(Tensor tensor, int offset, int ld, boolean transposed) {
    public Mat {
        if (tensor == null) {
            throw new IllegalArgumentException("a gemm operand needs a tensor");
        }
        if (offset < 0 || ld <= 0) {
            throw new IllegalArgumentException("tensor " + tensor.name() + ": offset " + offset + " and ld " + ld
                    + " must be >= 0 and > 0");
        }
    }

    /** t as a (rows, ld) matrix from element 0. */
    public static Mat of(Tensor t, int ld) {
        return new Mat(t, 0, ld, false);
    }

    /** The transpose of t, t stored as a (rows, ld) matrix from element 0. */
    public static Mat transposeOf(Tensor t, int ld) {
        return new Mat(t, 0, ld, true);
    }

    /** Element (i, j) of op(this) is stored at offset + i·rowStride() + j·colStride(). */
    public int rowStride() {
        return transposed ? 1 : ld;
    }

    public int colStride() {
        return transposed ? ld : 1;
    }

    /** The number of floats a (rows, cols) op(this) reaches from the tensor's start. */
    long extent(int rows, int cols) {
        return (long) offset + (long) (rows - 1) * rowStride() + (long) (cols - 1) * colStride() + 1;
    }
}
