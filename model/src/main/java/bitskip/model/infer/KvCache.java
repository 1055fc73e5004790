package bitskip.model.infer;

/**
 * The key/value cache of one layer: keys (after RoPE) and values of positions [0, fill), in arrays planned for
 * the whole context. Values are position-major, (NKV, HS) per position. Keys are stored transposed in tiles of
 * {@code tile} positions (the float vector's lanes): tile t holds, for each of the NKV·HS components in order,
 * the component of positions t·tile .. t·tile + tile − 1 side by side. Attention then loads one component of a
 * vector's width of positions in one load and computes their scores at once, one multiply-add per component,
 * without summing lanes per position; a tile's components are contiguous (NKV·HS·tile floats), so reading a head's
 * keys streams through memory instead of striding by the context (which mapped a head's 64 components to a few
 * cache sets). {@link #crop} forgets every position from a given one on (a rejected speculative draft); the
 * entries are overwritten when those positions are computed again.
 */
public final class KvCache {
    final float[] k, v;
    private final int capacity, kv;
    /** Positions per key tile. */
    private final int tile;
    int fill;

    KvCache(int capacity, int heads, int headSize, int tile) {
        if (tile < 1) {
            throw new IllegalArgumentException("tile must be >= 1, got " + tile);
        }
        this.capacity = capacity;
        this.kv = heads * headSize;
        this.tile = tile;
        k = new float[(capacity + tile - 1) / tile * tile * kv];
        v = new float[capacity * kv];
    }

    /** Stores the keys and values of positions [pos, pos + rows), given position-major ((rows, NKV, HS) each). */
    void put(int pos, int rows, float[] keys, float[] values) {
        System.arraycopy(values, 0, v, pos * kv, rows * kv);
        for (int t = 0; t < rows; t++) {
            int base = keyBase(pos + t) + (pos + t) % tile;
            for (int j = 0; j < kv; j++) {
                k[base + j * tile] = keys[t * kv + j];
            }
        }
    }

    /**
     * Index in {@link #k} of component 0 of the tile holding position s: component j of position s is at
     * keyBase(s) + j·tile + s % tile.
     */
    int keyBase(int s) {
        return s / tile * tile * kv;
    }

    /** The keys of positions [0, n), position-major ((n, NKV, HS)), copied: for comparing caches. */
    float[] keys(int n) {
        float[] out = new float[n * kv];
        for (int s = 0; s < n; s++) {
            for (int j = 0; j < kv; j++) {
                out[s * kv + j] = k[keyBase(s) + j * tile + s % tile];
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
