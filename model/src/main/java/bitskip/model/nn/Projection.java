package bitskip.model.nn;

import bitskip.engine.Backend;
import bitskip.engine.LinearActs;
import bitskip.engine.LinearParams;
import bitskip.engine.LinearScratch;
import bitskip.engine.Norm;
import bitskip.engine.NormStats;
import bitskip.engine.QuantLinear;
import bitskip.engine.Tensor;
import bitskip.model.config.BitSkipConfig;

/**
 * One quantized projection of a block (q, k, v, o, up or down): BitLinear, or H-BitLinear in the Hadamard
 * variants, as the config says. Holds its parameters and the activations its backward pass needs, for up
 * to {@code maxN} rows. One class for every projection and variant: the switches come from the config.
 */
final class Projection {
    final Param weight;
    final Param lnWeight;
    final Param lnBias;
    final int in;
    final int padded;
    final int out;
    private final boolean hadamard;
    private final QuantLinear spec;
    private final LinearParams values;
    private final LinearParams grads;
    /** The saved activations (the input is set per call). */
    private final LinearActs acts;

    /** Output (N, out). */
    final Tensor y;
    /** Ŵ of the last forward pass (the quantization loss reads it). */
    final Tensor wHat;

    Projection(Backend be, BitSkipConfig c, ParamList params, String name, int in, int out, int maxN) {
        this.in = in;
        this.out = out;
        this.hadamard = c.hadamard();
        this.spec = hadamard
                ? QuantLinear.hadamard(in, out, c.lnEps(), c.projectionBits(), c.ternary(), c.projectionRelu2())
                : QuantLinear.bitLinear(in, out, c.projectionBits(), c.ternary(), c.projectionRelu2());
        this.padded = spec.padded();
        this.weight = params.add(name + ".weight", Param.Kind.QUANTIZED, out, padded);
        Tensor z = null, lnOut = null;
        NormStats ln = null;
        if (hadamard) {
            lnWeight = params.add(name + ".norm.weight", Param.Kind.NORM_WEIGHT, in);
            lnBias = params.add(name + ".norm.bias", Param.Kind.BIAS, in);
            z = be.alloc(name + ".z", maxN * padded);
            lnOut = be.alloc(name + ".ln_out", maxN * in);
            ln = new NormStats(be.alloc(name + ".ln_mean", maxN), be.alloc(name + ".ln_rstd", maxN));
            values = new LinearParams(weight.value, new Norm(lnWeight.value, lnBias.value));
            grads = new LinearParams(weight.grad, new Norm(lnWeight.grad, lnBias.grad));
        } else {
            lnWeight = lnBias = null;
            values = LinearParams.bitLinear(weight.value);
            grads = LinearParams.bitLinear(weight.grad);
        }
        y = be.alloc(name + ".out", maxN * out);
        wHat = be.alloc(name + ".w_hat", out * padded);
        Tensor preact = spec.relu2() ? be.alloc(name + ".preact", maxN * out) : null;
        acts = new LinearActs(null, y, preact, be.alloc(name + ".x_hat", maxN * padded), be.alloc(name + ".act_scale", maxN),
                wHat, z, lnOut, ln);
    }

    /** y = proj(inp) for N rows; returns alpha. */
    float forward(Backend be, Tensor inp, int N) {
        LinearActs a = acts.withInput(inp);
        return hadamard ? be.hBitLinearForward(spec, N, values, a) : be.bitLinearForward(spec, N, values, a);
    }

    /** Accumulates dinp (N, in) and the parameter gradients from dy (N, out); inp is the forward's input. */
    void backward(Backend be, Tensor dinp, Tensor dy, Tensor inp, LinearScratch s, int N) {
        LinearActs a = acts.withInput(inp);
        if (hadamard) {
            be.hBitLinearBackward(spec, N, values, a, dy, dinp, grads, s);
        } else {
            be.bitLinearBackward(spec, N, values, a, dy, dinp, grads, s);
        }
    }

    /** Backward scratch shared by all projections of the model (one layer runs at a time). */
    static LinearScratch scratch(Backend be, int maxN, int maxOut, int maxPadded, int maxIn) {
        return new LinearScratch(be.alloc("scratch.dpreact", maxN * maxOut), be.alloc("scratch.dz", maxN * maxPadded),
                be.alloc("scratch.dln_out", maxN * maxIn));
    }
}
