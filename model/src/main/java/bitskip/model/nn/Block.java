package bitskip.model.nn;

import bitskip.engine.AttentionActs;
import bitskip.engine.AttentionShape;
import bitskip.engine.Backend;
import bitskip.engine.LinearScratch;
import bitskip.engine.Norm;
import bitskip.engine.NormStats;
import bitskip.engine.RouterActs;
import bitskip.engine.RouterParams;
import bitskip.engine.RouterScratch;
import bitskip.engine.RouterShape;
import bitskip.engine.Tensor;
import bitskip.model.config.BitSkipConfig;

/**
 * One post-norm transformer block with its routing gate:
 * <pre>
 *   a = Attention(h);  h = LN_attn(h + dropout(a))
 *   f = FFN(h);        h = LN_ffn(h + dropout(f))      FFN(x) = down(dropout(relu2(up(x))))
 *   p_exit = Router(h)
 * </pre>
 * Attention: q, k, v projections (after a parameter-free LayerNorm when the config's attn_input_norm
 * applies), RoPE on q and k, causal grouped-query attention with dropout on the probabilities, o projection.
 * The block keeps every activation its backward pass reads, for up to maxB × ctx rows.
 */
final class Block {
    private final BitSkipConfig c;
    private final int layer;
    private final int C, F, NH, NKV, HS, H, KV;
    private final float eps;
    private final float pDrop;
    private final boolean inputNorm;

    final Param attnNormW, attnNormB, ffnNormW, ffnNormB;
    final Param routerNormW, routerNormB, fc1W, fc1B, fc2W, fc2B;
    final Projection q, k, v, o, up, down;

    // saved activations
    private final Tensor aIn;
    private final NormStats aStats, h1Stats, outStats;
    private final Tensor qr, kr, probs, att, attnMask;
    private final Tensor oDrop, oMask, r1, h1;
    private final Tensor g, gDrop, gMask, dDrop, dMask, r2;
    /** The block's output before layer skipping. */
    final Tensor blockOut;
    /** The router's activations (its input set per call); p, the exit probability (N), among them. */
    private final RouterActs router;
    final Tensor p;
    private final RouterShape routerShape;
    private final RouterParams routerValues, routerGrads;
    private final Norm attnNorm, ffnNorm, attnNormGrad, ffnNormGrad;

    Block(Backend be, BitSkipConfig c, ParamList params, int layer, int maxB) {
        this.c = c;
        this.layer = layer;
        C = c.dModel();
        F = c.ffnDim();
        NH = c.nHeads();
        NKV = c.nKvHeads();
        HS = c.headSize();
        H = c.routerHidden();
        KV = NKV * HS;
        eps = c.lnEps();
        pDrop = c.dropout();
        inputNorm = c.attnInputNorm() && !c.hadamard();
        int T = c.ctx();
        int N = maxB * T;
        String pre = "layers." + layer + ".";

        q = new Projection(be, c, params, pre + "attn.q_proj", C, C, N);
        k = new Projection(be, c, params, pre + "attn.k_proj", C, KV, N);
        v = new Projection(be, c, params, pre + "attn.v_proj", C, KV, N);
        o = new Projection(be, c, params, pre + "attn.o_proj", C, C, N);
        attnNormW = params.add(pre + "attn_norm.weight", Param.Kind.NORM_WEIGHT, C);
        attnNormB = params.add(pre + "attn_norm.bias", Param.Kind.BIAS, C);
        up = new Projection(be, c, params, pre + "ffn.up_proj", C, F, N);
        down = new Projection(be, c, params, pre + "ffn.down_proj", F, C, N);
        ffnNormW = params.add(pre + "ffn_norm.weight", Param.Kind.NORM_WEIGHT, C);
        ffnNormB = params.add(pre + "ffn_norm.bias", Param.Kind.BIAS, C);
        routerNormW = params.add(pre + "router.norm.weight", Param.Kind.NORM_WEIGHT, C);
        routerNormB = params.add(pre + "router.norm.bias", Param.Kind.BIAS, C);
        fc1W = params.add(pre + "router.fc1.weight", Param.Kind.LINEAR, H, C);
        fc1B = params.add(pre + "router.fc1.bias", Param.Kind.BIAS, H);
        fc2W = params.add(pre + "router.fc2.weight", Param.Kind.LINEAR, 1, H);
        fc2B = params.add(pre + "router.fc2.bias", Param.Kind.BIAS, 1);

        String a = "act.layer" + layer + ".";
        aIn = inputNorm ? be.alloc(a + "attn_in", N * C) : null;
        aStats = inputNorm ? new NormStats(be.alloc(a + "attn_in_mean", N), be.alloc(a + "attn_in_rstd", N)) : null;
        qr = be.alloc(a + "q_rope", N * C);
        kr = be.alloc(a + "k_rope", N * KV);
        probs = be.alloc(a + "probs", maxB * NH * T * T);
        att = be.alloc(a + "att", N * C);
        boolean drop = pDrop > 0;
        attnMask = drop ? be.alloc(a + "attn_mask", maxB * NH * T * T) : null;
        oDrop = drop ? be.alloc(a + "o_drop", N * C) : null;
        oMask = drop ? be.alloc(a + "o_mask", N * C) : null;
        r1 = be.alloc(a + "resid1", N * C);
        h1 = be.alloc(a + "h1", N * C);
        h1Stats = new NormStats(be.alloc(a + "h1_mean", N), be.alloc(a + "h1_rstd", N));
        g = be.alloc(a + "ffn_act", N * F);
        gDrop = drop ? be.alloc(a + "ffn_act_drop", N * F) : null;
        gMask = drop ? be.alloc(a + "ffn_mask", N * F) : null;
        dDrop = drop ? be.alloc(a + "down_drop", N * C) : null;
        dMask = drop ? be.alloc(a + "down_mask", N * C) : null;
        r2 = be.alloc(a + "resid2", N * C);
        blockOut = be.alloc(a + "out", N * C);
        outStats = new NormStats(be.alloc(a + "out_mean", N), be.alloc(a + "out_rstd", N));
        p = be.alloc(a + "p_exit", N);
        router = new RouterActs(null, be.alloc(a + "router_ln", N * C),
                new NormStats(be.alloc(a + "router_mean", N), be.alloc(a + "router_rstd", N)),
                be.alloc(a + "router_hidden", N * H), p);
        routerShape = new RouterShape(C, H, eps);
        routerValues = new RouterParams(new Norm(routerNormW.value, routerNormB.value), fc1W.value, fc1B.value,
                fc2W.value, fc2B.value);
        routerGrads = new RouterParams(new Norm(routerNormW.grad, routerNormB.grad), fc1W.grad, fc1B.grad, fc2W.grad,
                fc2B.grad);
        attnNorm = new Norm(attnNormW.value, attnNormB.value);
        attnNormGrad = new Norm(attnNormW.grad, attnNormB.grad);
        ffnNorm = new Norm(ffnNormW.value, ffnNormB.value);
        ffnNormGrad = new Norm(ffnNormW.grad, ffnNormB.grad);
    }

    private AttentionShape attention(int B, int T) {
        return new AttentionShape(B, T, NH, NKV, HS);
    }

    private AttentionActs attentionActs(Tensor v, boolean drop) {
        return new AttentionActs(qr, kr, v, probs, drop ? attnMask : null, att);
    }

    /**
     * blockOut = block(hin) for B sequences of T tokens; dropout masks drawn from dropSeed when training, at the
     * counters of global samples firstSample.. (0 unless these B samples are a shard of a larger batch). work is
     * attention's work area (shared by the blocks).
     */
    void forward(Backend be, Tensor hin, Tensor cos, Tensor sin, Tensor work, int B, int T, boolean train,
                 long dropSeed, long firstSample) {
        int N = B * T;
        boolean drop = train && pDrop > 0;
        Tensor x = hin;
        if (inputNorm) {
            be.layerNormForward(aIn, aStats, hin, Norm.NONE, N, C, eps);
            x = aIn;
        }
        q.forward(be, x, N);
        k.forward(be, x, N);
        v.forward(be, x, N);
        AttentionShape shape = attention(B, T);
        be.rope(qr, q.y, cos, sin, shape.queries(), 0, false);
        be.rope(kr, k.y, cos, sin, shape.keys(), 0, false);
        if (drop) {
            be.dropoutMask(attnMask, B * NH * T * T, pDrop, dropSeed, streamOffset(0) + firstSample * NH * T * T);
        }
        be.attentionForward(shape, attentionActs(v.y, drop), work);
        o.forward(be, att, N);
        be.add(r1, hin, dropout(be, drop, o.y, oMask, oDrop, N * C, dropSeed, 1, firstSample * T * C), N * C);
        be.layerNormForward(h1, h1Stats, r1, attnNorm, N, C, eps);

        up.forward(be, h1, N);
        be.relu2Forward(g, up.y, N * F);
        down.forward(be, dropout(be, drop, g, gMask, gDrop, N * F, dropSeed, 2, firstSample * T * F), N);
        be.add(r2, h1, dropout(be, drop, down.y, dMask, dDrop, N * C, dropSeed, 3, firstSample * T * C), N * C);
        be.layerNormForward(blockOut, outStats, r2, ffnNorm, N, C, eps);
    }

    /** p = Router(h), h being this layer's output after layer skipping. */
    void routerForward(Backend be, Tensor h, int N) {
        be.routerForward(routerShape, N, routerValues, router.withInput(h));
    }

    /** Accumulates dh += the router's gradient with respect to h, given dp (N). */
    void routerBackward(Backend be, Tensor dh, Tensor dp, Tensor h, Grads s, int N) {
        be.routerBackward(routerShape, N, routerValues, router.withInput(h), dp, dh, routerGrads, s.router);
    }

    /**
     * Backward through the block: given dOut (the gradient of blockOut), accumulates dhin and every
     * parameter gradient. Uses the shared scratch s; overwrites dOut.
     */
    void backward(Backend be, Tensor dhin, Tensor dOut, Tensor hin, Tensor cos, Tensor sin, Grads s,
                  LinearScratch ps, int B, int T, boolean train) {
        int N = B * T;
        boolean drop = train && pDrop > 0;
        // h = LN_ffn(r2), r2 = h1 + dropout(down(dropout(relu2(up(h1)))))
        be.zero(s.dr);
        be.layerNormBackward(s.dr, ffnNormGrad, dOut, r2, ffnNorm, outStats, N, C);
        be.copy(s.dh1, s.dr, N * C);
        be.zero(s.dg);
        down.backward(be, s.dg, dropoutBackward(be, drop, s.dr, dMask, s.dtmp, N * C), drop ? gDrop : g, ps, N);
        be.zero(s.du);
        be.relu2Backward(s.du, dropoutBackward(be, drop, s.dg, gMask, s.dgTmp, N * F), up.y, N * F);
        up.backward(be, s.dh1, s.du, h1, ps, N);

        // h1 = LN_attn(r1), r1 = hin + dropout(o(attention(...)))
        be.zero(s.dr);
        be.layerNormBackward(s.dr, attnNormGrad, s.dh1, r1, attnNorm, h1Stats, N, C);
        be.accumulate(dhin, s.dr, N * C);
        be.zero(s.datt);
        o.backward(be, s.datt, dropoutBackward(be, drop, s.dr, oMask, s.dtmp, N * C), att, ps, N);
        be.zero(s.dqr);
        be.zero(s.dkr);
        be.zero(s.dv);
        AttentionShape shape = attention(B, T);
        be.attentionBackward(shape, attentionActs(v.y, drop), s.datt, s.dqr, s.dkr, s.dv, s.attWork);
        be.zero(s.dq);
        be.zero(s.dk);
        be.rope(s.dq, s.dqr, cos, sin, shape.queries(), 0, true);
        be.rope(s.dk, s.dkr, cos, sin, shape.keys(), 0, true);
        Tensor x = inputNorm ? aIn : hin;
        Tensor dx = inputNorm ? s.dx : dhin;
        if (inputNorm) {
            be.zero(s.dx);
        }
        q.backward(be, dx, s.dq, x, ps, N);
        k.backward(be, dx, s.dk, x, ps, N);
        v.backward(be, dx, s.dv, x, ps, N);
        if (inputNorm) {
            be.layerNormBackward(dhin, Norm.NONE, s.dx, hin, Norm.NONE, aStats, N, C);
        }
    }

    /**
     * dropout(in) into out with a mask drawn for this site, starting skip counters into the site's range (the
     * elements of the samples before this shard), or in itself when dropout is off.
     */
    private Tensor dropout(Backend be, boolean drop, Tensor in, Tensor mask, Tensor out, int n, long seed, int site, long skip) {
        if (!drop) {
            return in;
        }
        be.dropoutMask(mask, n, pDrop, seed, streamOffset(site) + skip);
        be.dropoutForward(out, in, mask, n);
        return out;
    }

    /** The gradient through a dropout site: into scratch, or dout itself when dropout is off. */
    private static Tensor dropoutBackward(Backend be, boolean drop, Tensor dout, Tensor mask, Tensor scratch, int n) {
        if (!drop) {
            return dout;
        }
        be.zero(scratch);
        be.dropoutBackward(scratch, dout, mask, n);
        return scratch;
    }

    /** Each dropout site of each layer draws from its own counter range of the step's seed. */
    private long streamOffset(int site) {
        return ((long) layer * 8 + site) << 40;
    }

    /** Gradient scratch shared by all blocks (backward runs one block at a time). */
    static final class Grads {
        final Tensor dr, dh1, dtmp, dg, dgTmp, du, datt, dqr, dkr, dv, dq, dk, dx;
        /** Attention's work area, forward and backward: {@link AttentionShape#workSize} floats. */
        final Tensor attWork;
        final RouterScratch router;

        Grads(Backend be, BitSkipConfig c, int maxB) {
            int N = maxB * c.ctx();
            int C = c.dModel(), F = c.ffnDim(), KV = c.nKvHeads() * c.headSize(), H = c.routerHidden();
            dr = be.alloc("grad.resid", N * C);
            dh1 = be.alloc("grad.h1", N * C);
            dtmp = be.alloc("grad.dropout", N * C);
            dg = be.alloc("grad.ffn_act", N * F);
            dgTmp = be.alloc("grad.ffn_act_drop", N * F);
            du = be.alloc("grad.up", N * F);
            datt = be.alloc("grad.att", N * C);
            dqr = be.alloc("grad.q_rope", N * C);
            dkr = be.alloc("grad.k_rope", N * KV);
            dv = be.alloc("grad.v", N * KV);
            dq = be.alloc("grad.q", N * C);
            dk = be.alloc("grad.k", N * KV);
            dx = be.alloc("grad.attn_in", N * C);
            attWork = be.alloc("scratch.attention", 2 * c.ctx() * c.ctx());
            router = new RouterScratch(be.alloc("grad.router_logit", N), be.alloc("grad.router_hidden", N * H),
                    be.alloc("grad.router_pre", N * H), be.alloc("grad.router_ln", N * C));
        }
    }
}
