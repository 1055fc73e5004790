package bitskip.engine;

/** A tensor on the Java heap: the storage of the reference backend (and of host-side copies). */
public final class HeapTensor implements Tensor {
    private final String name;
    private final int size;
    private float[] data;

    public HeapTensor(String name, int n) {
        if (n < 0) {
            throw new IllegalArgumentException("tensor " + name + ": negative size " + n);
        }
        this.name = name;
        this.size = n;
        this.data = new float[n];
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String name() {
        return name;
    }

    /** Drops the array (the garbage collector returns it); later use fails with the tensor's name. */
    @Override
    public void close() {
        data = null;
    }

    /** The backing array (the reference backend's kernels work on it directly). */
    public float[] data() {
        if (data == null) {
            throw new IllegalStateException("tensor " + name + " was closed");
        }
        return data;
    }

    /** The backing array of t, or null for a null tensor; refuses a tensor of another backend. */
    static float[] of(Tensor t) {
        if (t == null) {
            return null;
        }
        if (t instanceof HeapTensor h) {
            return h.data();
        }
        throw new IllegalArgumentException("tensor " + t.name() + " belongs to another backend ("
                + t.getClass().getSimpleName() + "), not to a heap backend");
    }
}
