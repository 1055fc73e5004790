package bitskip.model.config;

import com.fasterxml.jackson.annotation.JsonIgnore;
import java.util.Locale;

/**
 * Every field of a BitSkip model and its training run, one record, serialized as snake_case JSON
 * ({@code d_model}, {@code lambda_ee}, ...) in {@code config.json}, in checkpoints and in the golden files
 * of the PyTorch reference. The named switches of {@code shared/spec/MODEL.md} section 7 are fields here,
 * so a user can flip any one of them alone. {@link Presets} builds a config from preset × profile × variant;
 * the compact constructor refuses an invalid one before any work starts, naming the field.
 */
public record BitSkipConfig(
        // ---- architecture ----
        int vocabSize,
        int dModel,
        int nLayers,
        int nHeads,
        int nKvHeads,
        int ffnDim,
        int ctx,
        float lnEps,
        float ropeTheta,
        /** Dropout on attention probabilities, on each sublayer output, and inside the FFN. */
        float dropout,
        /** H-BitLinear (LayerNorm, FWHT, quantize) on all six projections instead of BitLinear. */
        boolean hadamard,
        /** Activation bits of BitLinear. */
        int actBits,
        /** Activation bits of H-BitLinear: 4 in the paper's Eq. 3, 8 in Table 1 and the authors' code. */
        int hadamardActBits,
        /** relu2 on projection outputs: "all" (authors' code), "hadamard" (Eq. 3 literally), "none". */
        String projectionAct,
        /** The authors' learned absolute position table added to the token embedding (besides RoPE). */
        boolean learnedPositions,
        /** The authors' parameter-free LayerNorm before q/k/v in the no-Hadamard variants. */
        boolean attnInputNorm,
        /** Ternary weights (false: full-precision projections, for comparison runs). */
        boolean ternary,

        // ---- early exit, layer skipping, routing, auxiliary losses ----
        float lambdaEe,
        float pMax,
        float lambdaR,
        float lambdaQ,
        /** Early-exit targets: "shifted" (next token) or "unshifted" (the current token: the authors' bug). */
        String eeTargets,
        /** Early-exit weights: "inverse" 1/(l+1) (paper) or "linear" (l+1) (authors' code). */
        String eeWeights,
        /** Final LayerNorm before the shared head on the exits during training. */
        boolean eeFinalNorm,
        /**
         * What each early exit l &lt; L−1 adds to the shared head: "shared" (nothing: the paper's Eq. 4),
         * "adapter" (its own residual adapter h + W_l·LN_l(h), W_l float d×d initialized to zero, before the
         * head) or "lowrank" (its own rank-{@code exit_rank} correction of the head's weights, W + U_l·D_l,
         * U_l initialized to zero).
         */
        String exitHead,
        /** The early-exit loss of the exits l &lt; L−1 does not train the shared head (final norm and LM head). */
        boolean exitHeadGradStop,
        /** The rank r of exit_head = lowrank's corrections (0 for the other designs). */
        int exitRank,
        /** Layer-skip probability p_max·(l/D)²: D = "L" (paper) or "L-1" (authors' code). */
        String skipDenominator,
        /** Routing loss: "per_token" mean of (l̄−l*)², or "batch_mean" (mean l̄ − l*)² (authors' code). */
        String routeLoss,
        /** Quantization loss: "l2" mean of ‖W−Ŵ‖² (paper Eq. 8) or "mse" mean of elementwise MSEs. */
        String quantLoss,
        /** Router exit at inference (p_exit > routerThreshold); the authors never used it. */
        boolean routerExit,
        float routerThreshold,
        /** Initialization: "paper" (N(0, 0.02)) or "reference" (the authors' scheme). */
        String init,

        // ---- training ----
        float lr,
        float beta1,
        float beta2,
        float adamEps,
        float weightDecay,
        float gradClip,
        /** "wsd" (warmup–stable–decay) or "cosine" (linear warmup then cosine to 0). */
        String schedule,
        /** Warmup steps; -1 means min(100, steps/10). */
        int warmupSteps,
        /** Fraction of the run spent in the WSD linear decay. */
        float decayFrac,
        int batch,
        int accum,
        int steps,
        int evalEvery,
        /** Validation batches per evaluation; 0 means the whole split. */
        int evalBatches,
        int patience,
        /** An evaluation improves on the best only by more than this many perplexity points. */
        float minDeltaPpl,
        long seed,
        /** Rows of the LM head computed at once (logits of all rows never exist together). */
        int headChunk,
        /**
         * The number format of the matrix products in training: "fp32", or "bf16" (operands rounded to bfloat16,
         * float32 accumulation, results, master weights and optimizer state; the cpu backend on a CPU with bf16
         * instructions).
         */
        String precision,

        // ---- provenance ----
        String preset,
        String profile,
        String variant) {

    public BitSkipConfig {
        finite("ln_eps", lnEps);
        finite("rope_theta", ropeTheta);
        finite("dropout", dropout);
        finite("lambda_ee", lambdaEe);
        finite("p_max", pMax);
        finite("lambda_r", lambdaR);
        finite("lambda_q", lambdaQ);
        finite("router_threshold", routerThreshold);
        finite("lr", lr);
        finite("beta1", beta1);
        finite("beta2", beta2);
        finite("adam_eps", adamEps);
        finite("weight_decay", weightDecay);
        finite("grad_clip", gradClip);
        finite("decay_frac", decayFrac);
        finite("min_delta_ppl", minDeltaPpl);
        positive("vocab_size", vocabSize);
        positive("d_model", dModel);
        positive("n_layers", nLayers);
        positive("n_heads", nHeads);
        positive("n_kv_heads", nKvHeads);
        positive("ffn_dim", ffnDim);
        positive("ctx", ctx);
        if (dModel % nHeads != 0) {
            throw invalid("n_heads", nHeads, "must divide d_model = " + dModel);
        }
        if (nHeads % nKvHeads != 0) {
            throw invalid("n_kv_heads", nKvHeads, "must divide n_heads = " + nHeads);
        }
        if ((dModel / nHeads) % 2 != 0) {
            throw invalid("n_heads", nHeads, "head size d_model/n_heads = " + dModel / nHeads + " must be even for RoPE");
        }
        if (dModel % 4 != 0) {
            throw invalid("d_model", dModel, "must be a multiple of 4 (the router's hidden size is d_model/4)");
        }
        if (!(lnEps > 0)) {
            throw invalid("ln_eps", lnEps, "must be positive");
        }
        if (!(ropeTheta > 0)) {
            throw invalid("rope_theta", ropeTheta, "must be positive");
        }
        rate("dropout", dropout, false);
        bits("act_bits", actBits);
        bits("hadamard_act_bits", hadamardActBits);
        oneOf("projection_act", projectionAct, "all", "hadamard", "none");
        nonNegative("lambda_ee", lambdaEe);
        rate("p_max", pMax, false);
        nonNegative("lambda_r", lambdaR);
        nonNegative("lambda_q", lambdaQ);
        oneOf("ee_targets", eeTargets, "shifted", "unshifted");
        oneOf("ee_weights", eeWeights, "inverse", "linear");
        oneOf("exit_head", exitHead, EXIT_HEADS);
        if (!exitHead.equals("shared") && !(lambdaEe > 0)) {
            throw invalid("exit_head", "'" + exitHead + "'", "per-exit heads train only through the early-exit loss: "
                    + "needs lambda_ee > 0 (it is " + lambdaEe + ")");
        }
        if (exitHead.equals("lowrank") ? exitRank < 1 || exitRank > Math.min(dModel, vocabSize) : exitRank != 0) {
            throw invalid("exit_rank", exitRank, exitHead.equals("lowrank")
                    ? "must be in [1, min(d_model, vocab_size)] = [1, " + Math.min(dModel, vocabSize) + "]"
                    : "must be 0 unless exit_head = lowrank (it is '" + exitHead + "')");
        }
        if (exitHeadGradStop && !(lambdaEe > 0)) {
            throw invalid("exit_head_grad_stop", true, "stops the early-exit loss's gradient: needs lambda_ee > 0 (it is "
                    + lambdaEe + ")");
        }
        oneOf("skip_denominator", skipDenominator, "L", "L-1");
        oneOf("route_loss", routeLoss, "per_token", "batch_mean");
        oneOf("quant_loss", quantLoss, "l2", "mse");
        if (!(routerThreshold > 0 && routerThreshold < 1)) {
            throw invalid("router_threshold", routerThreshold, "must be in (0, 1)");
        }
        oneOf("init", init, "paper", "reference");
        if (!(lr > 0)) {
            throw invalid("lr", lr, "must be positive");
        }
        rate("beta1", beta1, false);
        rate("beta2", beta2, false);
        if (!(adamEps > 0)) {
            throw invalid("adam_eps", adamEps, "must be positive");
        }
        nonNegative("weight_decay", weightDecay);
        if (!(gradClip > 0)) {
            throw invalid("grad_clip", gradClip, "must be positive");
        }
        oneOf("schedule", schedule, "wsd", "cosine");
        if (warmupSteps < -1) {
            throw invalid("warmup_steps", warmupSteps, "must be -1 (automatic) or >= 0");
        }
        if (!(decayFrac >= 0 && decayFrac <= 1)) {
            throw invalid("decay_frac", decayFrac, "must be in [0, 1]");
        }
        positive("batch", batch);
        positive("accum", accum);
        positive("steps", steps);
        positive("eval_every", evalEvery);
        if (evalBatches < 0) {
            throw invalid("eval_batches", evalBatches, "must be >= 0 (0 = the whole split)");
        }
        positive("patience", patience);
        nonNegative("min_delta_ppl", minDeltaPpl);
        positive("head_chunk", headChunk);
        oneOf("precision", precision, "fp32", "bf16");
        // (the fields are assigned after this body: the check takes the parameters)
        requireAddressable(sizes(vocabSize, dModel, nHeads, ffnDim, ctx, nLayers, headChunk, hadamard, batch), batch,
                MAX_TENSOR_ELEMENTS, "a backend tensor can address");
    }

    /** The values of {@code exit_head}. */
    public static final String[] EXIT_HEADS = {"shared", "adapter", "lowrank"};

    /**
     * Fields added after configurations were first written (checkpoints, run folders, deployable files), with
     * the value that reproduces what those files meant; a complete configuration without them takes these.
     */
    public static final java.util.Map<String, Object> ADDED_FIELDS = java.util.Map.of(
            "exit_head", "shared", "exit_head_grad_stop", false, "exit_rank", 0, "precision", "fp32");

    // ---- derived quantities ----

    /** Whether early exit l has its own adapter before the shared head (the last layer never does). */
    public boolean exitAdapter(int l) {
        return exitHead.equals("adapter") && l < nLayers - 1;
    }

    /** Whether early exit l has its own low-rank correction of the head (the last layer never does). */
    public boolean exitLowRank(int l) {
        return exitHead.equals("lowrank") && l < nLayers - 1;
    }

    /** Whether the early-exit loss of exit l leaves the shared head's parameters untouched. */
    public boolean exitGradStop(int l) {
        return exitHeadGradStop && l < nLayers - 1;
    }

    @JsonIgnore
    public int headSize() {
        return dModel / nHeads;
    }

    @JsonIgnore
    public int routerHidden() {
        return dModel / 4;
    }

    /** Whether relu2 follows each quantized projection. */
    @JsonIgnore
    public boolean projectionRelu2() {
        return projectionAct.equals("all") || (projectionAct.equals("hadamard") && hadamard);
    }

    /** Activation bits of the quantized projections of this variant. */
    @JsonIgnore
    public int projectionBits() {
        return hadamard ? hadamardActBits : actBits;
    }

    /** Layer-skip probability of layer l (0 for the last layer, which is never skipped). */
    public double skipProbability(int l) {
        if (l == nLayers - 1) {
            return 0.0;
        }
        double denom = skipDenominator.equals("L") ? nLayers : nLayers - 1;
        double r = l / denom;
        return pMax * r * r;
    }

    /** The normalized early-exit weight w̄_l. */
    public double exitWeight(int l) {
        double sum = 0;
        for (int i = 0; i < nLayers; i++) {
            sum += rawExitWeight(i);
        }
        return rawExitWeight(l) / sum;
    }

    private double rawExitWeight(int l) {
        return eeWeights.equals("inverse") ? 1.0 / (l + 1) : (l + 1);
    }

    /** Warmup steps after resolving the automatic value. */
    @JsonIgnore
    public int resolvedWarmup() {
        return warmupSteps >= 0 ? warmupSteps : Math.min(100, steps / 10);
    }

    // ---- sizes ----

    /** Floats one backend tensor can hold: {@code Backend.alloc} and the kernels index with an int. */
    public static final long MAX_TENSOR_ELEMENTS = Integer.MAX_VALUE;

    /**
     * A tensor a model of this configuration allocates.
     *
     * @param what     what it holds
     * @param field    the field to blame first when it is too large
     * @param value    that field's value
     * @param formula  how its size is computed from the fields
     * @param elements its size in floats, exact (Long.MAX_VALUE when even a long overflows)
     */
    public record TensorSize(String what, String field, long value, String formula, long elements) {}

    /**
     * The largest tensor a model of this configuration allocates for {@code batch} sequences (parameters,
     * activations, attention probabilities, the LM head's chunk of logits), every product computed without
     * overflow.
     */
    public TensorSize largestTensor(int batch) {
        return largest(sizes(vocabSize, dModel, nHeads, ffnDim, ctx, nLayers, headChunk, hadamard, batch));
    }

    /** Refuses, naming the field, a configuration whose largest tensor for batch sequences a backend cannot hold. */
    public void requireAddressable(int batch) {
        requireAddressable(batch, MAX_TENSOR_ELEMENTS, "a backend tensor can address");
    }

    /**
     * Refuses, naming the field, a configuration whose largest tensor for batch sequences exceeds maxElements
     * floats, which limit says what it is ("the largest buffer OpenCL device 0:0 allocates").
     */
    public void requireAddressable(int batch, long maxElements, String limit) {
        requireAddressable(sizes(vocabSize, dModel, nHeads, ffnDim, ctx, nLayers, headChunk, hadamard, batch), batch,
                Math.min(maxElements, MAX_TENSOR_ELEMENTS), maxElements < MAX_TENSOR_ELEMENTS ? limit : "a backend tensor can address");
    }

    private static TensorSize[] sizes(int vocabSize, int dModel, int nHeads, int ffnDim, int ctx, int nLayers,
                                      int headChunk, boolean hadamard, long batch) {
        long paddedD = padded(dModel, hadamard), paddedF = padded(ffnDim, hadamard), maxIn = Math.max(paddedD, paddedF);
        String pad = hadamard ? " (padded to a power of 2 for the Hadamard transform)" : "";
        return new TensorSize[] {
            new TensorSize("the token embedding and the LM head", "vocab_size", vocabSize, "vocab_size × d_model",
                    product(vocabSize, dModel)),
            new TensorSize("the attention probabilities", "ctx", ctx, "batch × n_heads × ctx²", product(batch, nHeads, ctx, ctx)),
            new TensorSize("the widest activations", maxIn == paddedF ? "ffn_dim" : "d_model", maxIn == paddedF ? ffnDim : dModel,
                    "batch × ctx × max(d_model, ffn_dim)" + pad, product(batch, ctx, maxIn)),
            new TensorSize("the FFN weights", "ffn_dim", ffnDim, "ffn_dim × d_model" + pad,
                    Math.max(product(ffnDim, paddedD), product(dModel, paddedF))),
            new TensorSize("the LM head's chunk of logits", "head_chunk", headChunk, "min(head_chunk, batch × ctx) × vocab_size",
                    product(Math.min(headChunk, product(batch, ctx)), vocabSize)),
            new TensorSize("the exit probabilities", "n_layers", nLayers, "n_layers × batch × ctx", product(nLayers, batch, ctx)),
        };
    }

    private static TensorSize largest(TensorSize[] all) {
        TensorSize largest = all[0];
        for (TensorSize t : all) {
            if (t.elements() > largest.elements()) {
                largest = t;
            }
        }
        return largest;
    }

    private static void requireAddressable(TensorSize[] all, int batch, long maxElements, String limit) {
        if (batch <= 0) {
            throw invalid("batch", batch, "must be positive");
        }
        TensorSize t = largest(all);
        if (t.elements() > maxElements) {
            throw invalid(t.field(), t.value(), String.format(Locale.ROOT,
                    "%s (%s, batch %d) would hold %s floats, more than the %,d %s; "
                            + "lower %s or the batch", t.what(), t.formula(), batch,
                    t.elements() == Long.MAX_VALUE ? "more than 2^63" : String.format(Locale.ROOT, "%,d", t.elements()),
                    maxElements, limit, t.field()));
        }
    }

    /** The width a projection's input has: padded to a power of two under the Hadamard transform. */
    private static long padded(int n, boolean hadamard) {
        return hadamard && Long.bitCount(n) != 1 ? Long.highestOneBit(n) << 1 : n;
    }

    /** The exact product, or Long.MAX_VALUE when it overflows a long. */
    private static long product(long... factors) {
        long p = 1;
        try {
            for (long f : factors) {
                p = Math.multiplyExact(p, f);
            }
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
        return p;
    }

    // ---- checks ----

    private static IllegalArgumentException invalid(String field, Object value, String rule) {
        return new IllegalArgumentException("invalid configuration: " + field + " = " + value + ": " + rule);
    }

    private static void finite(String field, float v) {
        if (!Float.isFinite(v)) {
            throw invalid(field, v, "must be a finite number");
        }
    }

    private static void positive(String field, int v) {
        if (v <= 0) {
            throw invalid(field, v, "must be positive");
        }
    }

    private static void nonNegative(String field, float v) {
        if (!(v >= 0)) {
            throw invalid(field, v, "must be >= 0");
        }
    }

    private static void rate(String field, float v, boolean allowOne) {
        if (!(v >= 0 && (allowOne ? v <= 1 : v < 1))) {
            throw invalid(field, v, allowOne ? "must be in [0, 1]" : "must be in [0, 1)");
        }
    }

    private static void bits(String field, int v) {
        if (v < 2 || v > 8) {
            throw invalid(field, v, "must be between 2 and 8 bits");
        }
    }

    private static void oneOf(String field, String v, String... allowed) {
        for (String a : allowed) {
            if (a.equals(v)) {
                return;
            }
        }
        throw invalid(field, v == null ? "null" : "'" + v + "'", "must be one of " + String.join(", ", allowed));
    }
}
