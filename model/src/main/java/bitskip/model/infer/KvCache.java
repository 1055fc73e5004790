package bitskip.model.infer;

/**
 * The key/value cache of one layer: keys (after RoPE) and values of positions [0, fill), each
 * (NKV, HS) per position, in arrays planned for the whole context. {@link #crop} forgets every position from
 * a given one on (a rejected speculative draft); the entries are overwritten when those positions are
 * computed again.
 */
public final class KvCache {
    final float[] k, v;
    private final int capacity;
    int fill;

    KvCache(int capacity, int kvWidth) {
        this.capacity = capacity;
        k = new float[capacity * kvWidth];
        v = new float[capacity * kvWidth];
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
