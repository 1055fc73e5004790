package bitskip.engine;

/**
 * A flat float buffer owned by a backend: on the heap for the Java reference, off-heap or on a device for
 * the others. The model only passes tensors back to the backend that made them; it reads values through
 * {@link Backend#download}.
 */
public interface Tensor {
    /** Number of float elements. */
    int size();

    /** What the tensor holds, for error messages ("layers.0.attn.q_proj.weight", "act.layer0.q"). */
    String name();
}
