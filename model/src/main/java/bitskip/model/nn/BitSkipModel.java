package bitskip.model.nn;

import bitskip.engine.AdapterActs;
import bitskip.engine.AdapterParams;
import bitskip.engine.Backend;
import bitskip.engine.LinearScratch;
import bitskip.engine.LmHead;
import bitskip.engine.Norm;
import bitskip.engine.NormStats;
import bitskip.engine.Tensor;
import bitskip.kernels.Rope;
import bitskip.model.config.BitSkipConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * The BitSkip model (spec sections 1–3) on a backend: token embedding (+ the learned position table under
 * the authors' profile), L post-norm blocks of quantized projections with a routing gate each, final
 * LayerNorm and an untied LM head shared by every exit. Under {@code exit_head = adapter} every early exit
 * l &lt; L−1 first passes its hidden state through its own residual adapter h + W_l·LN_l(h) (parameters
 * {@code exit_heads.<l>.norm.*} and {@code exit_heads.<l>.proj.weight}, W_l starting at zero); under
 * {@code exit_head = lowrank} every early exit reads the head W + U_l·D_l (rank {@code exit_rank}, parameters
 * {@code exit_heads.<l>.up.weight} (V, r), starting at zero, and {@code exit_heads.<l>.down.weight} (r, C)),
 * materialized once per pass in a (V, C) scratch; under {@code exit_head_grad_stop} the early-exit loss of
 * those exits does not train the final norm and the head.
 *
 * <p>One forward pass computes the task loss, the early-exit loss, the routing loss and the quantization
 * loss. The LM head's loss and gradient for an exit are computed as soon as that layer's output exists,
 * chunk by chunk ({@link Backend#headLoss}), so the logits of all layers are never held; the backward pass
 * then runs the routers and the blocks from the top down. Activations are planned once for
 * {@code maxBatch} sequences of {@code ctx} tokens and reused every step.
 */
public final class BitSkipModel {
    public final BitSkipConfig config;
    private final Backend be;
    private final int maxB;
    private final int C, L, V, T;

    private final ParamList params;
    final Param wte, wpe, finalNormW, finalNormB, head;
    final Block[] blocks;
    /** Per early exit l < L−1 under exit_head = adapter: its LayerNorm and its (C, C) matrix; else null. */
    final Param[] adapterNormW, adapterNormB, adapterW;
    /** Per early exit l < L−1 under exit_head = lowrank: U_l (V, r) and D_l (r, C); else null. */
    final Param[] lowRankUp, lowRankDown;

    private final Tensor cos, sin;
    private final Tensor x0, dx0;
    /** h[l]: the output of layer l after layer skipping; dH[l] its gradient. */
    private final Tensor[] h, dH;
    private final Tensor dBlock;
    private final Tensor normed, dNormed, logits;
    private final NormStats normStats;
    /** The adapted exit input, its gradient, the adapter's LayerNorm output and its gradient (adapter only). */
    private final Tensor exitIn, dExitIn, adapterLn, dAdapterLn;
    private final NormStats adapterStats;
    /** Where a grad-stopped exit's final-norm gradients go, to be discarded (grad stop only). */
    private final Norm discardedNormGrads;
    /** A low-rank exit's head W + U_l·D_l and its gradient, (V, C) each (lowrank only). */
    private final Tensor exitHead, dExitHead;
    private final Tensor pAll, lbar, dpAll, dpLayer;
    private final Block.Grads grads;
    private final LinearScratch projScratch;
    private final List<Projection> projections = new ArrayList<>();

    public BitSkipModel(BitSkipConfig c, Backend be, int maxBatch) {
        if (maxBatch <= 0) {
            throw new IllegalArgumentException("maxBatch must be positive, got " + maxBatch);
        }
        c.requireAddressable(maxBatch); // every tensor below fits an int count, or nothing is allocated
        this.config = c;
        this.be = be;
        this.maxB = maxBatch;
        C = c.dModel();
        L = c.nLayers();
        V = c.vocabSize();
        T = c.ctx();
        int N = maxB * T;
        params = new ParamList(be);
        wte = params.add("tok_embeddings.weight", Param.Kind.EMBEDDING, V, C);
        wpe = c.learnedPositions() ? params.add("pos_embeddings.weight", Param.Kind.EMBEDDING, T, C) : null;
        blocks = new Block[L];
        for (int l = 0; l < L; l++) {
            blocks[l] = new Block(be, c, params, l, maxB);
            Block b = blocks[l];
            projections.addAll(List.of(b.q, b.k, b.v, b.o, b.up, b.down));
        }
        finalNormW = params.add("final_norm.weight", Param.Kind.NORM_WEIGHT, C);
        finalNormB = params.add("final_norm.bias", Param.Kind.BIAS, C);
        head = params.add("lm_head.weight", Param.Kind.LINEAR, V, C);
        // after every other parameter, so the shared-head model draws the same initial values as before
        boolean adapters = c.exitHead().equals("adapter");
        adapterNormW = adapters ? new Param[L - 1] : null;
        adapterNormB = adapters ? new Param[L - 1] : null;
        adapterW = adapters ? new Param[L - 1] : null;
        for (int l = 0; adapters && l < L - 1; l++) {
            adapterNormW[l] = params.add("exit_heads." + l + ".norm.weight", Param.Kind.NORM_WEIGHT, C);
            adapterNormB[l] = params.add("exit_heads." + l + ".norm.bias", Param.Kind.BIAS, C);
            adapterW[l] = params.add("exit_heads." + l + ".proj.weight", Param.Kind.ZERO, C, C);
        }
        boolean lowRank = c.exitHead().equals("lowrank");
        lowRankUp = lowRank ? new Param[L - 1] : null;
        lowRankDown = lowRank ? new Param[L - 1] : null;
        for (int l = 0; lowRank && l < L - 1; l++) {
            lowRankDown[l] = params.add("exit_heads." + l + ".down.weight", Param.Kind.LINEAR, c.exitRank(), C);
            lowRankUp[l] = params.add("exit_heads." + l + ".up.weight", Param.Kind.ZERO, V, c.exitRank());
        }

        int HS = c.headSize();
        float[] cs = new float[T * HS / 2], sn = new float[T * HS / 2];
        Rope.table(cs, sn, T, HS, c.ropeTheta());
        cos = be.alloc("rope.cos", cs.length);
        sin = be.alloc("rope.sin", sn.length);
        be.upload(cos, cs);
        be.upload(sin, sn);

        x0 = be.alloc("act.embedding", N * C);
        dx0 = be.alloc("grad.embedding", N * C);
        h = new Tensor[L];
        dH = new Tensor[L];
        for (int l = 0; l < L; l++) {
            h[l] = be.alloc("act.h" + l, N * C);
            dH[l] = be.alloc("grad.h" + l, N * C);
        }
        dBlock = be.alloc("grad.block_out", N * C);
        normed = be.alloc("act.final_norm", N * C);
        normStats = new NormStats(be.alloc("act.final_norm_mean", N), be.alloc("act.final_norm_rstd", N));
        dNormed = be.alloc("grad.final_norm", N * C);
        // one chunk of logits, overwritten by its gradient in place: the logits of all rows never exist at once
        logits = be.alloc("scratch.logits", Math.min(c.headChunk(), N) * V);
        boolean anyAdapter = adapters && L > 1;
        exitIn = anyAdapter ? be.alloc("act.exit_in", N * C) : null;
        dExitIn = anyAdapter ? be.alloc("grad.exit_in", N * C) : null;
        adapterLn = anyAdapter ? be.alloc("act.exit_adapter_ln", N * C) : null;
        dAdapterLn = anyAdapter ? be.alloc("grad.exit_adapter_ln", N * C) : null;
        adapterStats = anyAdapter ? new NormStats(be.alloc("act.exit_adapter_mean", N), be.alloc("act.exit_adapter_rstd", N))
                : null;
        discardedNormGrads = c.exitHeadGradStop()
                ? new Norm(be.alloc("scratch.discarded_norm_weight_grad", C), be.alloc("scratch.discarded_norm_bias_grad", C))
                : null;
        exitHead = lowRank && L > 1 ? be.alloc("scratch.exit_head", V * C) : null;
        dExitHead = lowRank && L > 1 ? be.alloc("grad.exit_head", V * C) : null;
        pAll = be.alloc("act.p_exit", L * N);
        lbar = be.alloc("act.lbar", N);
        dpAll = be.alloc("grad.p_exit", L * N);
        dpLayer = be.alloc("grad.p_exit_layer", N);
        grads = new Block.Grads(be, c, maxB);
        int maxOut = Math.max(C, c.ffnDim());
        int maxPadded = 0;
        for (Projection p : projections) {
            maxPadded = Math.max(maxPadded, p.padded);
        }
        projScratch = Projection.scratch(be, N, maxOut, maxPadded, maxOut);
    }

    public ParamList params() {
        return params;
    }

    public Backend backend() {
        return be;
    }

    public int maxBatch() {
        return maxB;
    }

    /** The output of layer l after the last forward pass (N rows of C). */
    public Tensor hidden(int l) {
        return h[l];
    }

    /** p_exit of every layer after the last forward pass, (L, N) layer-major. */
    public Tensor exitProbabilities() {
        return pAll;
    }

    // ---- initialization ---------------------------------------------------------------------------

    /** Fills every parameter from one seeded generator, in parameter order, per the config's init. */
    public void initialize(long seed) {
        boolean ref = config.init().equals("reference");
        Random rng = new Random(seed);
        for (Param p : params.all()) {
            float[] a = new float[p.size];
            switch (p.kind) {
                case EMBEDDING -> gaussian(rng, a, ref ? 0.001 : 0.02);
                case LINEAR -> gaussian(rng, a, ref ? 0.002 : 0.02);
                case QUANTIZED -> {
                    if (ref) {
                        // kaiming_uniform(a = sqrt 5) has bound 1/sqrt(fan_in); the authors scale it by 0.1
                        double bound = 0.1 / Math.sqrt(p.fanIn());
                        for (int i = 0; i < a.length; i++) {
                            a[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
                        }
                    } else {
                        gaussian(rng, a, 0.02);
                    }
                }
                case NORM_WEIGHT -> Arrays.fill(a, 1.0f);
                case BIAS, ZERO -> Arrays.fill(a, 0.0f);
            }
            be.upload(p.value, a);
        }
    }

    private static void gaussian(Random rng, float[] a, double std) {
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (rng.nextGaussian() * std);
        }
    }

    public void zeroGrads() {
        for (Param p : params.all()) {
            be.zero(p.grad);
        }
    }

    // ---- training and evaluation passes ------------------------------------------------------------

    /**
     * One training forward and backward pass over B sequences: accumulates lossScale × ∂total/∂θ into the
     * parameter gradients. skip (L × B, 1 = skip) may be null; dropout masks come from dropSeed.
     */
    public Losses trainStep(int[] inputs, int[] targets, int B, int[][] skip, long dropSeed, float lossScale) {
        return trainStep(inputs, targets, B, skip, dropSeed, lossScale, 0);
    }

    /**
     * {@link #trainStep} for B samples that are samples firstSample.. of a larger batch (a data-parallel
     * worker's shard): the dropout masks are those of their global sample indices, so the shards of N
     * workers together draw exactly the masks one process draws for the whole batch.
     */
    public Losses trainStep(int[] inputs, int[] targets, int B, int[][] skip, long dropSeed, float lossScale, long firstSample) {
        return run(inputs, targets, B, skip, dropSeed, firstSample, true, true, lossScale, false);
    }

    /**
     * The training objective without gradients: dropout off unless {@code dropout}; every exit loss is
     * computed even when lambda_ee is 0, so it can be reported.
     */
    public Losses forward(int[] inputs, int[] targets, int B, int[][] skip, boolean dropout, long dropSeed) {
        return run(inputs, targets, B, skip, dropSeed, 0, dropout, false, 1.0f, true);
    }

    /**
     * Evaluation (Table 5's convention): no dropout, no skipping; returns the summed cross-entropy of the
     * final output ({@code [0]}) and of every exit l with the final LayerNorm and the shared head, with exit
     * l's adapter or low-rank correction where it has one ({@code [1 + l]}); sums over the B·T tokens, so callers can weight by tokens.
     */
    public double[] evaluate(int[] inputs, int[] targets, int B, boolean exits) {
        checkBatch(inputs, targets, B);
        int N = B * T;
        embed(inputs, B);
        double[] sums = new double[1 + L];
        Arrays.fill(sums, Double.NaN);
        Tensor prev = x0;
        for (int l = 0; l < L; l++) {
            blocks[l].forward(be, prev, cos, sin, grads.attWork, B, T, false, 0L, 0);
            be.copy(h[l], blocks[l].blockOut, N * C);
            if (exits || l == L - 1) {
                double ce = (l == L - 1 ? headPass(h[l], true, targets, N, 0.0f, null, false, -1)
                        : exitPass(l, true, targets, N, 0.0f, null)) * N;
                sums[1 + l] = ce;
                if (l == L - 1) {
                    sums[0] = ce;
                }
            }
            prev = h[l];
        }
        return sums;
    }

    private void checkBatch(int[] inputs, int[] targets, int B) {
        if (B <= 0 || B > maxB) {
            throw new IllegalArgumentException("batch B = " + B + " must be in [1, " + maxB + "] (the model was planned for " + maxB + ")");
        }
        if (inputs.length < B * T || targets.length < B * T) {
            throw new IllegalArgumentException("inputs/targets hold " + inputs.length + "/" + targets.length
                    + " tokens, need B*T = " + B * T);
        }
    }

    private void embed(int[] inputs, int B) {
        be.embeddingForward(x0, inputs, wte.value, B * T, C, V);
        if (wpe != null) {
            be.positionsForward(x0, wpe.value, B, T, C, 0, T);
        }
    }

    private Losses run(int[] inputs, int[] targets, int B, int[][] skip, long dropSeed, long firstSample, boolean dropout,
                       boolean backward, float lossScale, boolean allExits) {
        checkBatch(inputs, targets, B);
        if (skip != null && skip.length != L) {
            throw new IllegalArgumentException("skip mask has " + skip.length + " layers, the model has " + L);
        }
        int N = B * T;
        BitSkipConfig c = config;
        boolean eeActive = c.lambdaEe() > 0;
        boolean computeExits = eeActive || allExits;
        int[] eeTargets = c.eeTargets().equals("shifted") ? targets : inputs;
        // The last exit is the task head itself when it uses the same norm and targets: one pass serves both.
        boolean lastExitIsTask = c.eeFinalNorm() && c.eeTargets().equals("shifted");

        if (backward) {
            be.zero(dx0);
            for (Tensor t : dH) {
                be.zero(t);
            }
        }
        embed(inputs, B);
        double task = 0.0, ee = 0.0;
        double[] exits = new double[L];
        Arrays.fill(exits, Double.NaN);
        Tensor prev = x0;
        for (int l = 0; l < L; l++) {
            Block blk = blocks[l];
            blk.forward(be, prev, cos, sin, grads.attWork, B, T, dropout, dropSeed, firstSample);
            if (skips(skip, l)) {
                be.selectSamples(h[l], blk.blockOut, prev, skip[l], B, T, C);
            } else {
                be.copy(h[l], blk.blockOut, N * C);
            }
            double wExit = c.lambdaEe() * c.exitWeight(l);
            Tensor dh = backward ? dH[l] : null;
            if (l == L - 1) {
                float w = 1.0f + (lastExitIsTask ? (float) wExit : 0.0f);
                task = headPass(h[l], true, targets, N, w * lossScale, dh, false, -1);
                if (lastExitIsTask && computeExits) {
                    exits[l] = task;
                }
            }
            if (computeExits && !(l == L - 1 && lastExitIsTask)) {
                exits[l] = exitPass(l, c.eeFinalNorm(), eeTargets, N, eeActive ? (float) wExit * lossScale : 0.0f, dh);
            }
            if (computeExits) {
                ee += c.exitWeight(l) * exits[l];
            }
            blk.routerForward(be, h[l], N);
            be.copy(pAll, l * N, blk.p, 0, N);
            prev = h[l];
        }
        float target = L / 2.0f;
        boolean batchMean = c.routeLoss().equals("batch_mean");
        double route = be.routingLossForward(lbar, pAll, L, N, target, batchMean);
        double quant = quantizationLoss();
        if (!computeExits) {
            ee = Double.NaN;
        }
        double total = task + (eeActive ? c.lambdaEe() * ee : 0.0) + c.lambdaQ() * quant + c.lambdaR() * route;

        if (backward) {
            if (c.lambdaR() > 0) {
                be.zero(dpAll);
                be.routingLossBackward(dpAll, pAll, lbar, L, N, target, batchMean, c.lambdaR() * lossScale);
                for (int l = 0; l < L; l++) {
                    be.copy(dpLayer, 0, dpAll, l * N, N);
                    blocks[l].routerBackward(be, dH[l], dpLayer, h[l], grads, N);
                }
            }
            if (c.lambdaQ() > 0) {
                quantizationBackward(c.lambdaQ() * lossScale);
            }
            for (int l = L - 1; l >= 0; l--) {
                Tensor hin = l == 0 ? x0 : h[l - 1];
                Tensor dhin = l == 0 ? dx0 : dH[l - 1];
                Tensor dOut = dH[l];
                if (skips(skip, l)) {
                    be.selectSamplesBackward(dBlock, dhin, dH[l], skip[l], B, T, C);
                    dOut = dBlock;
                }
                blocks[l].backward(be, dhin, dOut, hin, cos, sin, grads, projScratch, B, T, dropout);
            }
            be.embeddingBackward(wte.grad, dx0, inputs, N, C, V);
            if (wpe != null) {
                be.positionsBackward(wpe.grad, dx0, B, T, C, 0, T);
            }
        }
        return new Losses(task, ee, quant, route, total, exits);
    }

    private static boolean skips(int[][] skip, int l) {
        if (skip == null) {
            return false;
        }
        for (int s : skip[l]) {
            if (s != 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * The loss of exit l (the shared head on layer l's output, after exit l's adapter or with its low-rank
     * correction where it has one), as {@link #headPass}; the gradient reaches dx through the adapter, exit
     * l's own parameters, and the shared head's parameters unless exit l is grad-stopped.
     */
    private double exitPass(int l, boolean norm, int[] targets, int N, float gradScale, Tensor dx) {
        if (!config.exitAdapter(l)) {
            return headPass(h[l], norm, targets, N, gradScale, dx, config.exitGradStop(l), l);
        }
        boolean grad = dx != null && gradScale != 0.0f;
        AdapterActs acts = adapterForward(l, N);
        if (grad) {
            be.zero(dExitIn);
        }
        double ce = headPass(exitIn, norm, targets, N, gradScale, grad ? dExitIn : null, config.exitGradStop(l), l);
        if (grad) {
            be.exitAdapterBackward(N, C, adapter(l, false), acts, dExitIn, dx, adapter(l, true), dAdapterLn);
        }
        return ce;
    }

    /** Exit l's adapter on h[l] into exitIn. */
    private AdapterActs adapterForward(int l, int N) {
        AdapterActs acts = new AdapterActs(h[l], adapterLn, adapterStats, exitIn);
        be.exitAdapterForward(N, C, config.lnEps(), adapter(l, false), acts);
        return acts;
    }

    /** Exit l's adapter parameters, or their gradients. */
    private AdapterParams adapter(int l, boolean grads) {
        return grads ? new AdapterParams(new Norm(adapterNormW[l].grad, adapterNormB[l].grad), adapterW[l].grad)
                : new AdapterParams(new Norm(adapterNormW[l].value, adapterNormB[l].value), adapterW[l].value);
    }

    /**
     * The head exit l reads: the shared head, or under exit_head = lowrank for an early exit, W + U_l·D_l
     * written into the exitHead scratch (U_l·D_l summed over the rank, then added to W).
     */
    private Tensor headOf(int exit) {
        if (exit < 0 || !config.exitLowRank(exit)) {
            return head.value;
        }
        be.lowRankHeadForward(exitHead, head.value, lowRankUp[exit].value, lowRankDown[exit].value, V, C, config.exitRank());
        return exitHead;
    }

    /**
     * Mean cross-entropy of headOf(exit)((finalNorm)(x)) against targets over N rows (exit −1: the shared
     * head); if dx is not null, accumulates gradScale·∂(mean CE)/∂ into dx, exit's low-rank factors and,
     * unless stopHead, into the head and the final norm.
     */
    private double headPass(Tensor x, boolean norm, int[] targets, int N, float gradScale, Tensor dx, boolean stopHead,
                            int exit) {
        boolean grad = dx != null && gradScale != 0.0f;
        float scale = gradScale / N;
        Norm finalNorm = new Norm(finalNormW.value, finalNormB.value);
        Tensor w = headOf(exit);
        boolean lowRank = w != head.value;
        if (lowRank && grad) {
            be.zero(dExitHead);
        }
        LmHead lm = new LmHead(w, lowRank ? dExitHead : stopHead ? null : head.grad, C, V, logits,
                Math.min(config.headChunk(), N));
        Tensor in = x;
        if (norm) {
            be.layerNormForward(normed, normStats, x, finalNorm, N, C, config.lnEps());
            in = normed;
        }
        double sum;
        if (!grad) {
            sum = be.headLoss(lm, in, targets, N, 0.0f, null);
        } else if (norm) {
            be.zero(dNormed);
            sum = be.headLoss(lm, in, targets, N, scale, dNormed);
            if (stopHead) { // never read: zeroed only so that it cannot grow without bound
                be.zero(discardedNormGrads.weight());
                be.zero(discardedNormGrads.bias());
            }
            be.layerNormBackward(dx, stopHead ? discardedNormGrads : new Norm(finalNormW.grad, finalNormB.grad), dNormed, x,
                    finalNorm, normStats, N, C);
        } else {
            sum = be.headLoss(lm, in, targets, N, scale, dx);
        }
        if (lowRank && grad) {
            // dW' (V, C) into its factors: dU += dW'·Dᵀ, dD += Uᵀ·dW'; and into W unless stopped
            Param up = lowRankUp[exit], down = lowRankDown[exit];
            be.lowRankHeadBackward(up.grad, down.grad, dExitHead, up.value, down.value, V, C, config.exitRank());
            if (!stopHead) {
                be.accumulate(head.grad, dExitHead, V * C);
            }
        }
        return sum / N;
    }

    /** The quantization loss (Eq. 8) from the Ŵ of the last forward pass; 0 with full-precision weights. */
    private double quantizationLoss() {
        if (!config.ternary()) {
            return 0.0;
        }
        double sum = 0.0;
        boolean mse = config.quantLoss().equals("mse");
        for (Projection p : projections) {
            double se = be.squaredError(p.weight.value, p.wHat, p.weight.size);
            sum += mse ? se / p.weight.size : se;
        }
        return sum / projections.size();
    }

    private void quantizationBackward(float scale) {
        if (!config.ternary()) {
            return;
        }
        boolean mse = config.quantLoss().equals("mse");
        for (Projection p : projections) {
            float s = scale / projections.size() / (mse ? p.weight.size : 1);
            be.squaredErrorBackward(p.weight.grad, p.weight.value, p.wHat, p.weight.size, s);
        }
    }

    /**
     * The logits (N, V) of exit l after the last forward pass: the shared head (with exit l's low-rank
     * correction where it has one) on layer l's output (after exit l's adapter where it has one), after the
     * final LayerNorm when finalNorm. For inspection and tests: it allocates N·V floats.
     */
    public float[] exitLogits(int l, boolean finalNorm, int N) {
        Tensor in = h[l];
        if (config.exitAdapter(l)) {
            adapterForward(l, N);
            in = exitIn;
        }
        if (finalNorm) {
            be.layerNormForward(normed, normStats, in, new Norm(finalNormW.value, finalNormB.value), N, C,
                    config.lnEps());
            in = normed;
        }
        Tensor out = be.alloc("exit_logits", N * V);
        be.matmulForward(out, in, headOf(l), null, N, C, V);
        float[] result = new float[N * V];
        be.download(out, result);
        out.close();
        return result;
    }

    /** The quantized matrices (the 6·L projections), for statistics and export. */
    public List<Param> quantizedWeights() {
        List<Param> out = new ArrayList<>();
        for (Projection p : projections) {
            out.add(p.weight);
        }
        return out;
    }
}
