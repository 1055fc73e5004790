package bitskip.model.nn;

import bitskip.engine.Backend;
import bitskip.engine.Tensor;
import java.util.Arrays;

/**
 * One named parameter tensor of the model (its checkpoint name, e.g. {@code layers.0.attn.q_proj.weight}),
 * with its gradient and, once the optimizer touches it, AdamW's two moments.
 */
public final class Param {
    /** How a parameter is initialized. */
    public enum Kind { EMBEDDING, LINEAR, QUANTIZED, NORM_WEIGHT, BIAS, /** starts at 0 (an exit adapter's W). */ ZERO }

    public final String name;
    public final int[] shape;
    public final int size;
    public final Kind kind;
    public final Tensor value;
    public final Tensor grad;
    private Tensor m;
    private Tensor v;

    Param(Backend be, String name, Kind kind, int... shape) {
        this.name = name;
        this.kind = kind;
        this.shape = shape.clone();
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("parameter " + name + " " + Arrays.toString(shape) + " is too large");
        }
        this.size = (int) n;
        this.value = be.alloc(name, size);
        this.grad = be.alloc(name + ".grad", size);
    }

    /** AdamW's first moment, allocated (zeroed) on first use. */
    public Tensor m(Backend be) {
        if (m == null) {
            m = be.alloc(name + ".adam_m", size);
        }
        return m;
    }

    /** AdamW's second moment, allocated (zeroed) on first use. */
    public Tensor v(Backend be) {
        if (v == null) {
            v = be.alloc(name + ".adam_v", size);
        }
        return v;
    }

    /** The fan-in of a weight matrix [out, in]: its last dimension. */
    public int fanIn() {
        return shape[shape.length - 1];
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape);
    }
}
