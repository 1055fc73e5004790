package bitskip.model.train;

import bitskip.engine.Backend;
import bitskip.engine.Tensor;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Finding NaN and infinity: in an array (what checkpoints check before writing and after reading), and in a
 * model whose loss or gradient norm went non-finite (which tensor went bad first, in model order).
 */
public final class NonFinite {
    private NonFinite() {}

    /** Index of the first NaN or infinity in a, or -1. */
    public static int first(float[] a) {
        for (int i = 0; i < a.length; i++) {
            if (!Float.isFinite(a[i])) {
                return i;
            }
        }
        return -1;
    }

    /**
     * What is wrong with a tensor's values ("3 of 4,096 values are not finite, the first NaN at index 17"), or
     * null when all are finite.
     */
    public static String describe(float[] a) {
        int first = first(a);
        if (first < 0) {
            return null;
        }
        int n = 0;
        for (float x : a) {
            if (!Float.isFinite(x)) {
                n++;
            }
        }
        return String.format(Locale.ROOT, "%,d of %,d values are not finite, the first %s at index %d", n, a.length,
                a[first], first);
    }

    /**
     * The first tensor of the model, in model order, that holds a NaN or an infinity, named and described;
     * or a sentence saying that none does. Model order is the forward pass's (the parameters of each layer,
     * then that layer's output from the last forward pass; the final norm and the LM head last), then the
     * gradients in the order the backward pass computes them (from the LM head down).
     */
    public static String firstBadTensor(BitSkipModel model) {
        Backend be = model.backend();
        for (Named t : modelOrder(model)) {
            float[] a = new float[t.tensor().size()];
            be.download(t.tensor(), a);
            String what = describe(a);
            if (what != null) {
                return "the first non-finite tensor in model order is " + t.name() + " (" + what + ")";
            }
        }
        return "every parameter, layer output and gradient is finite";
    }

    private record Named(String name, Tensor tensor) {}

    private static List<Named> modelOrder(BitSkipModel model) {
        List<Param> params = model.params().all();
        List<Named> order = new ArrayList<>();
        int layer = -1;
        for (Param p : params) {
            int l = layerOf(p.name);
            if (layer >= 0 && l != layer) {
                order.add(new Named("the output of layer " + layer, model.hidden(layer)));
            }
            layer = l;
            order.add(new Named(p.name, p.value));
        }
        if (layer >= 0) {
            order.add(new Named("the output of layer " + layer, model.hidden(layer)));
        }
        for (int i = params.size() - 1; i >= 0; i--) {
            order.add(new Named("the gradient of " + params.get(i).name, params.get(i).grad));
        }
        return order;
    }

    /** N for a parameter named layers.N.*, else -1. */
    private static int layerOf(String name) {
        if (!name.startsWith("layers.")) {
            return -1;
        }
        int dot = name.indexOf('.', "layers.".length());
        return Integer.parseInt(name.substring("layers.".length(), dot));
    }
}
