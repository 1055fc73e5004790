package bitskip.model.infer;

/**
 * The key/value cache of one layer: keys (after RoPE) and values of positions [0, fill), in arrays planned for
 * the whole context. Values are position-major, (NKV, HS) per position. Keys are stored transposed, (NKV, HS,
 * capacity): the HS components of a head's key lie capacity floats apart and each component's positions are
 * contiguous, so attention computes the scores of a vector's width of positions at once, one multiply-add per
 * component, without summing lanes per position. {@link #crop} forgets every position from a given one on (a
 * rejected speculative draft); the entries are overwritten when those positions are computed again.
 */
public final class KvCache {
    final float[] k, v;
    private final int capacity, heads, headSize;
    int fill;

    KvCache(int capacity, int heads, int headSize) {
        this.capacity = capacity;
        this.heads = heads;
        this.headSize = headSize;
        k = new float[capacity * heads * headSize];
        v = new float[capacity * heads * headSize];
    }

    /** Stores the keys and values of positions [pos, pos + rows), given position-major ((rows, NKV, HS) each). */
    void put(int pos, int rows, float[] keys, float[] values) {
        int kv = heads * headSize;
        System.arraycopy(values, 0, v, pos * kv, rows * kv);
        for (int t = 0; t < rows; t++) {
            for (int j = 0; j < kv; j++) {
                k[j * capacity + pos + t] = keys[t * kv + j];
            }
        }
    }

    /** Index in {@link #k} of component i of head h's key at position 0 (position s is s floats further). */
    int keyBase(int h, int i) {
        return (h * headSize + i) * capacity;
    }

    /** The keys of positions [0, n), position-major ((n, NKV, HS)), copied: for comparing caches. */
    float[] keys(int n) {
        int kv = heads * headSize;
        float[] out = new float[n * kv];
        for (int s = 0; s < n; s++) {
            for (int j = 0; j < kv; j++) {
                out[s * kv + j] = k[j * capacity + s];
            }
        }
        return out;
    }

    /** Positions whose keys and values are valid: [0, fill). */
    public int fill() {
        return fill;
    }

    public int capacity() {
        return capacity;
    }

    /** Keeps positions [0, min(fill, length)). */
    public void crop(int length) {
        if (length < 0) {
            throw new IllegalArgumentException("crop length must be >= 0, got " + length);
        }
        fill = Math.min(fill, length);
    }
}
