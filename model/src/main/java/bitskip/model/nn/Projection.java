package bitskip.model.nn;

import bitskip.engine.Backend;
import bitskip.engine.Tensor;
import bitskip.kernels.Hadamard;
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
    private final boolean ternary;
    private final boolean relu2;
    private final int bits;
    private final float eps;

    /** Output (N, out). */
    final Tensor y;
    private final Tensor preact;
    private final Tensor xHat;
    private final Tensor actScale;
    /** Ŵ of the last forward pass (the quantization loss reads it). */
    final Tensor wHat;
    private final Tensor z;
    private final Tensor lnOut;
    private final Tensor lnMean;
    private final Tensor lnRstd;

    Projection(Backend be, BitSkipConfig c, ParamList params, String name, int in, int out, int maxN) {
        this.in = in;
        this.out = out;
        this.hadamard = c.hadamard();
        this.padded = hadamard ? Hadamard.nextPow2(in) : in;
        this.ternary = c.ternary();
        this.relu2 = c.projectionRelu2();
        this.bits = c.projectionBits();
        this.eps = c.lnEps();
        this.weight = params.add(name + ".weight", Param.Kind.QUANTIZED, out, padded);
        if (hadamard) {
            lnWeight = params.add(name + ".norm.weight", Param.Kind.NORM_WEIGHT, in);
            lnBias = params.add(name + ".norm.bias", Param.Kind.BIAS, in);
            z = be.alloc(name + ".z", maxN * padded);
            lnOut = be.alloc(name + ".ln_out", maxN * in);
            lnMean = be.alloc(name + ".ln_mean", maxN);
            lnRstd = be.alloc(name + ".ln_rstd", maxN);
        } else {
            lnWeight = lnBias = null;
            z = lnOut = lnMean = lnRstd = null;
        }
        y = be.alloc(name + ".out", maxN * out);
        preact = relu2 ? be.alloc(name + ".preact", maxN * out) : null;
        xHat = be.alloc(name + ".x_hat", maxN * padded);
        actScale = be.alloc(name + ".act_scale", maxN);
        wHat = be.alloc(name + ".w_hat", out * padded);
    }

    /** y = proj(inp) for N rows; returns alpha. */
    float forward(Backend be, Tensor inp, int N) {
        if (hadamard) {
            return be.hBitLinearForward(y, preact, xHat, actScale, wHat, z, lnOut, lnMean, lnRstd, inp,
                    lnWeight.value, lnBias.value, weight.value, N, in, padded, out, eps, bits, ternary, relu2);
        }
        return be.bitLinearForward(y, preact, xHat, actScale, wHat, inp, weight.value, N, in, out, bits, ternary, relu2);
    }

    /** Accumulates dinp (N, in) and the parameter gradients from dy (N, out). */
    void backward(Backend be, Tensor dinp, Tensor dy, Tensor inp, Scratch s, int N) {
        if (hadamard) {
            be.hBitLinearBackward(dinp, lnWeight.grad, lnBias.grad, weight.grad, s.dpreact, s.dz, s.dlnOut, dy,
                    preact, xHat, wHat, z, lnMean, lnRstd, inp, lnWeight.value, weight.value, N, in, padded, out,
                    bits, ternary, relu2);
        } else {
            be.bitLinearBackward(dinp, weight.grad, s.dpreact, dy, preact, xHat, wHat, inp, weight.value, N, in, out,
                    bits, ternary, relu2);
        }
    }

    /** Backward scratch shared by all projections of the model (one layer runs at a time). */
    static final class Scratch {
        final Tensor dpreact;
        final Tensor dz;
        final Tensor dlnOut;

        Scratch(Backend be, int maxN, int maxOut, int maxPadded, int maxIn) {
            dpreact = be.alloc("scratch.dpreact", maxN * maxOut);
            dz = be.alloc("scratch.dz", maxN * maxPadded);
            dlnOut = be.alloc("scratch.dln_out", maxN * maxIn);
        }
    }
}
