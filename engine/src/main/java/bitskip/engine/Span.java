package bitskip.engine;

/**
 * A tensor from an element offset on: an operand of {@link Backend#pointwise}, {@link Backend#copy} and the
 * softmax primitives, which work on one slice of a larger tensor (one sample, one attention head).
 */
public record Span(Tensor tensor, int offset) {
    public Span {
        if (tensor == null) {
            throw new IllegalArgumentException("a span needs a tensor (got null at offset " + offset + ")");
        }
        if (offset < 0) {
            throw new IllegalArgumentException("tensor " + tensor.name() + ": negative offset " + offset);
        }
    }

    /** The span of t from offset 0, or null for a null tensor (an operand an op does not read). */
    public static Span of(Tensor t) {
        return t == null ? null : new Span(t, 0);
    }

    /** Requires n elements from the offset on; names the tensor and what n is. */
    public Span need(long n, String what) {
        Tensors.need(tensor, (long) offset + n, what + (offset == 0 ? "" : " from offset " + offset));
        return this;
    }
}
