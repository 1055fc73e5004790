package bitskip.engine;

/** A tensor on the Java heap: the storage of the reference backend (and of host-side copies). */
public final class HeapTensor implements Tensor {
    private final String name;
    final float[] data;

    public HeapTensor(String name, int n) {
        if (n < 0) {
            throw new IllegalArgumentException("tensor " + name + ": negative size " + n);
        }
        this.name = name;
        this.data = new float[n];
    }

    @Override
    public int size() {
        return data.length;
    }

    @Override
    public String name() {
        return name;
    }

    /** The backing array (the reference backend's kernels work on it directly). */
    public float[] data() {
        return data;
    }

    /** The backing array of t, or null for a null tensor; refuses a tensor of another backend. */
    static float[] of(Tensor t) {
        if (t == null) {
            return null;
        }
        if (t instanceof HeapTensor) {
            return ((HeapTensor) t).data;
        }
        throw new IllegalArgumentException("tensor " + t.name() + " belongs to another backend ("
                + t.getClass().getSimpleName() + "), not to a heap backend");
    }
}
