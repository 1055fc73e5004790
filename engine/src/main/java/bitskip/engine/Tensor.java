package bitskip.engine;

/**
 * A flat float buffer owned by a backend: on the heap for the Java reference, off-heap or on a device for
 * the others. The model only passes tensors back to the backend that made them; it reads values through
 * {@link Backend#download}.
 *
 * <p>{@link #close} returns the tensor's memory at once (off-heap and device memory are not the garbage
 * collector's to return in time); {@link Backend#close} closes every tensor the backend still holds. A closed
 * tensor refuses further use with its name in the message.
 */
public interface Tensor extends AutoCloseable {
    /** Number of float elements. */
    int size();

    /** What the tensor holds, for error messages ("layers.0.attn.q_proj.weight", "act.layer0.q"). */
    String name();

    /** Frees the tensor's memory now. Closing twice is harmless. */
    @Override
    void close();

    /** This tensor from element {@code offset} on: an operand of the primitives that take offsets. */
    default Span at(int offset) {
        return new Span(this, offset);
    }
}
