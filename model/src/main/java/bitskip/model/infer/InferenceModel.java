package bitskip.model.infer;

import bitskip.engine.Backend;
import bitskip.kernels.Hadamard;
import bitskip.kernels.Rope;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;
import java.util.Map;
import java.util.function.Function;

/**
 * A BitSkip model ready for inference: the six projections of every layer as packed ternary matrices
 * ({@link TernaryLinear}) with one alpha each, the LM head in float or int8 ({@link LmHead}), optionally a
 * draft head for self-speculation ({@link DraftHead}), everything else (embeddings, position table, norms,
 * routers, final norm) in float. It computes what the training model computes in evaluation mode (no
 * dropout, no layer skipping): W1.58 weights and per-token absmax activations of
 * {@code config.projectionBits()} bits, through integer kernels (int8 × ternary, int32 accumulation; see
 * {@code bitskip.kernels.TernaryMatmul}). Sessions ({@link Session}) hold the KV caches; the model itself
 * is immutable and may serve several sessions, one thread each. Under {@code exit_head = adapter} every
 * early exit l &lt; L−1 applies its residual adapter ({@link ExitHeads}) before the final norm and the head;
 * under {@code exit_head = lowrank} it adds its rank-r term U_l·(D_l·x) to the head's logits; both with
 * whichever head (f32, int8, draft) reads it.
 */
public final class InferenceModel {
    public final BitSkipConfig config;
    final int C, L, V, T, NH, NKV, HS, KV, F, H;
    final float[] wte, wpe;
    final Layer[] layers;
    final float[] finalNormW, finalNormB;
    final LmHead head;
    /** The draft head of self-speculation, or null. */
    final DraftHead draft;
    /** The early exits' own parameters, or null under exit_head = shared. */
    final ExitHeads exitHeads;
    final float[] cos, sin;
    final Parallel par;

    /** The parameters of one block in inference form. */
    static final class Layer {
        TernaryLinear q, k, v, o, up, down;
        float[] attnNormW, attnNormB, ffnNormW, ffnNormB;
        float[] routerNormW, routerNormB, fc1W, fc1B, fc2W, fc2B;
    }

    /**
     * The own parameters of the early exits l &lt; L−1, float, under their training names: exit_head = adapter,
     * the residual adapters h + W_l·LN_l(h) ({@code exit_heads.<l>.norm.weight}, {@code .norm.bias},
     * {@code .proj.weight}); exit_head = lowrank, the factors D_l (r, C) and U_l (V, r) of the head's correction
     * ({@code exit_heads.<l>.down.weight}, {@code .up.weight}). The other design's arrays are null.
     */
    static final class ExitHeads {
        final float[][] normW, normB, w, down, up;
        final int rank;

        ExitHeads(BitSkipConfig c, Function<String, float[]> get) {
            int n = c.nLayers() - 1;
            boolean adapter = c.exitHead().equals("adapter");
            rank = c.exitRank();
            normW = adapter ? new float[n][] : null;
            normB = adapter ? new float[n][] : null;
            w = adapter ? new float[n][] : null;
            down = adapter ? null : new float[n][];
            up = adapter ? null : new float[n][];
            for (int l = 0; l < n; l++) {
                for (Map.Entry<String, float[][]> e : arrays().entrySet()) {
                    e.getValue()[l] = get.apply(exitName(l, e.getKey()));
                }
            }
        }

        /** The arrays of this design by their names' last part ("norm.weight", "up.weight", ...). */
        Map<String, float[][]> arrays() {
            Map<String, float[][]> m = new java.util.LinkedHashMap<>();
            if (w != null) {
                m.put("norm.weight", normW);
                m.put("norm.bias", normB);
                m.put("proj.weight", w);
            } else {
                m.put("down.weight", down);
                m.put("up.weight", up);
            }
            return m;
        }

        /** The exits' parameters a configuration implies, or null for the shared head. */
        static ExitHeads of(BitSkipConfig c, Function<String, float[]> get) {
            return c.exitHead().equals("shared") ? null : new ExitHeads(c, get);
        }
    }

    static String exitName(int l, String what) {
        return "exit_heads." + l + "." + what;
    }

    /** The projections of a block, in the order of the training model's parameter list. */
    static final String[] PROJECTIONS = {"attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj",
            "ffn.up_proj", "ffn.down_proj"};

    InferenceModel(BitSkipConfig c, float[] wte, float[] wpe, Layer[] layers, float[] finalNormW,
                   float[] finalNormB, ExitHeads exitHeads, LmHead head, DraftHead draft, Parallel par) {
        if (!c.ternary()) {
            throw new IllegalArgumentException("invalid configuration: ternary = false: a deployed model needs "
                    + "ternary weights (this one was trained with full-precision projections)");
        }
        this.config = c;
        C = c.dModel();
        L = c.nLayers();
        V = c.vocabSize();
        T = c.ctx();
        NH = c.nHeads();
        NKV = c.nKvHeads();
        HS = c.headSize();
        KV = NKV * HS;
        F = c.ffnDim();
        H = c.routerHidden();
        this.wte = wte;
        this.wpe = wpe;
        this.layers = layers;
        this.finalNormW = finalNormW;
        this.finalNormB = finalNormB;
        if ((exitHeads != null) == c.exitHead().equals("shared")) {
            throw new IllegalArgumentException("exit_head = " + c.exitHead() + " but the model was given "
                    + (exitHeads == null ? "no " : "") + "per-exit parameters");
        }
        this.exitHeads = exitHeads;
        if (head.rows != c.vocabSize() || head.C != c.dModel()) {
            throw new IllegalArgumentException("the LM head is " + head.rows + " x " + head.C + " but the configuration "
                    + "implies " + c.vocabSize() + " x " + c.dModel());
        }
        this.head = head;
        this.draft = draft;
        this.par = par;
        cos = new float[T * HS / 2];
        sin = new float[T * HS / 2];
        Rope.table(cos, sin, T, HS, c.ropeTheta());
    }

    /** This model computing on other threads (the weights are shared, not copied). */
    public InferenceModel withParallel(Parallel p) {
        return new InferenceModel(config, wte, wpe, layers, finalNormW, finalNormB, exitHeads, head, draft, p);
    }

    /** This model with its LM head in format f (int8: quantized per row, 9-bit activations; the draft head follows). */
    public InferenceModel withHead(LmHead.Format f) {
        return withHead(f, LmHead.X_LEVELS);
    }

    /** This model with its LM head in format f, an int8 head's input rows coded with xLevels (255 or 127). */
    public InferenceModel withHead(LmHead.Format f, int xLevels) {
        LmHead h = head.as(f, xLevels);
        return new InferenceModel(config, wte, wpe, layers, finalNormW, finalNormB, exitHeads, h,
                draft == null ? null : new DraftHead(draft.ids, h), par);
    }

    /** This model with a draft head of the given vocabulary subset (ascending ids), or none for null. */
    public InferenceModel withDraft(int[] ids) {
        return new InferenceModel(config, wte, wpe, layers, finalNormW, finalNormB, exitHeads, head,
                ids == null ? null : new DraftHead(ids, head), par);
    }

    public LmHead head() {
        return head;
    }

    /** The draft head, or null when the model has none. */
    public DraftHead draft() {
        return draft;
    }

    /**
     * Builds the inference model from full-precision parameters by name (the training model's names,
     * {@code layers.0.attn.q_proj.weight}, ...): each projection is quantized as training does.
     */
    public static InferenceModel fromWeights(BitSkipConfig c, Function<String, float[]> get, Parallel par) {
        java.util.List<ProjectionSpec> specs = projectionSpecs(c);
        Layer[] layers = new Layer[c.nLayers()];
        for (int l = 0; l < layers.length; l++) {
            TernaryLinear[] p = new TernaryLinear[6];
            for (int i = 0; i < 6; i++) {
                ProjectionSpec s = specs.get(6 * l + i);
                p[i] = TernaryLinear.quantize(s.name(), s.in(), s.P(), s.OC(), get.apply(s.name() + ".weight"),
                        c.hadamard() ? get.apply(s.name() + ".norm.weight") : null,
                        c.hadamard() ? get.apply(s.name() + ".norm.bias") : null);
            }
            layers[l] = layer(p, "layers." + l + ".", get);
        }
        return new InferenceModel(c, get.apply("tok_embeddings.weight"),
                c.learnedPositions() ? get.apply("pos_embeddings.weight") : null, layers,
                get.apply("final_norm.weight"), get.apply("final_norm.bias"), ExitHeads.of(c, get),
                LmHead.f32(get.apply("lm_head.weight"), c.vocabSize(), c.dModel()), null, par);
    }

    static Layer layer(TernaryLinear[] p, String pre, Function<String, float[]> get) {
        Layer y = new Layer();
        y.q = p[0];
        y.k = p[1];
        y.v = p[2];
        y.o = p[3];
        y.up = p[4];
        y.down = p[5];
        fillFloats(y, pre, get);
        return y;
    }

    static void fillFloats(Layer y, String pre, Function<String, float[]> get) {
        y.attnNormW = get.apply(pre + "attn_norm.weight");
        y.attnNormB = get.apply(pre + "attn_norm.bias");
        y.ffnNormW = get.apply(pre + "ffn_norm.weight");
        y.ffnNormB = get.apply(pre + "ffn_norm.bias");
        y.routerNormW = get.apply(pre + "router.norm.weight");
        y.routerNormB = get.apply(pre + "router.norm.bias");
        y.fc1W = get.apply(pre + "router.fc1.weight");
        y.fc1B = get.apply(pre + "router.fc1.bias");
        y.fc2W = get.apply(pre + "router.fc2.weight");
        y.fc2B = get.apply(pre + "router.fc2.bias");
    }

    /** Name, input width, weight columns and output rows of one projection. */
    public record ProjectionSpec(String name, int in, int P, int OC) {}

    /** The projections a configuration implies, layer by layer in the order of {@link #PROJECTIONS}. */
    public static java.util.List<ProjectionSpec> projectionSpecs(BitSkipConfig c) {
        int C = c.dModel(), KV = c.nKvHeads() * c.headSize(), F = c.ffnDim();
        int[][] dims = {{C, C}, {C, KV}, {C, KV}, {C, C}, {C, F}, {F, C}};
        java.util.List<ProjectionSpec> out = new java.util.ArrayList<>();
        for (int l = 0; l < c.nLayers(); l++) {
            for (int i = 0; i < 6; i++) {
                int in = dims[i][0];
                out.add(new ProjectionSpec("layers." + l + "." + PROJECTIONS[i], in,
                        c.hadamard() ? Hadamard.nextPow2(in) : in, dims[i][1]));
            }
        }
        return out;
    }

    /**
     * Names and shapes of the float parameters a configuration implies besides the projection weights and the
     * LM head (whose form depends on the head format, see {@link DeployFile}).
     */
    public static java.util.Map<String, int[]> floatShapes(BitSkipConfig c) {
        int C = c.dModel(), H = c.routerHidden();
        java.util.Map<String, int[]> out = new java.util.LinkedHashMap<>();
        out.put("tok_embeddings.weight", new int[] {c.vocabSize(), C});
        if (c.learnedPositions()) {
            out.put("pos_embeddings.weight", new int[] {c.ctx(), C});
        }
        java.util.List<ProjectionSpec> specs = projectionSpecs(c);
        for (int l = 0; l < c.nLayers(); l++) {
            String pre = "layers." + l + ".";
            if (c.hadamard()) {
                for (ProjectionSpec p : specs.subList(6 * l, 6 * l + 6)) {
                    out.put(p.name() + ".norm.weight", new int[] {p.in()});
                    out.put(p.name() + ".norm.bias", new int[] {p.in()});
                }
            }
            for (String norm : new String[] {"attn_norm", "ffn_norm", "router.norm"}) {
                out.put(pre + norm + ".weight", new int[] {C});
                out.put(pre + norm + ".bias", new int[] {C});
            }
            out.put(pre + "router.fc1.weight", new int[] {H, C});
            out.put(pre + "router.fc1.bias", new int[] {H});
            out.put(pre + "router.fc2.weight", new int[] {1, H});
            out.put(pre + "router.fc2.bias", new int[] {1});
        }
        out.put("final_norm.weight", new int[] {C});
        out.put("final_norm.bias", new int[] {C});
        for (int l = 0; l < c.nLayers() - 1; l++) {
            if (c.exitHead().equals("adapter")) {
                out.put(exitName(l, "norm.weight"), new int[] {C});
                out.put(exitName(l, "norm.bias"), new int[] {C});
                out.put(exitName(l, "proj.weight"), new int[] {C, C});
            } else if (c.exitHead().equals("lowrank")) {
                out.put(exitName(l, "down.weight"), new int[] {c.exitRank(), C});
                out.put(exitName(l, "up.weight"), new int[] {c.vocabSize(), c.exitRank()});
            }
        }
        return out;
    }

    /** The float parameter of that name (embeddings, norms, routers; not the head), or null. */
    public float[] floatParam(String name) {
        if (name.equals("tok_embeddings.weight")) {
            return wte;
        }
        if (name.equals("pos_embeddings.weight")) {
            return wpe;
        }
        if (name.equals("final_norm.weight")) {
            return finalNormW;
        }
        if (name.equals("final_norm.bias")) {
            return finalNormB;
        }
        if (name.startsWith("exit_heads.") && exitHeads != null) {
            int dot = name.indexOf('.', 11);
            int l = dot < 0 ? -1 : Integer.parseInt(name.substring(11, dot));
            float[][] a = exitHeads.arrays().get(name.substring(dot + 1));
            return a == null || l < 0 || l >= a.length ? null : a[l];
        }
        for (TernaryLinear p : projections()) {
            if (name.equals(p.name + ".norm.weight")) {
                return p.lnWeight;
            }
            if (name.equals(p.name + ".norm.bias")) {
                return p.lnBias;
            }
        }
        if (name.startsWith("layers.")) {
            int dot = name.indexOf('.', 7);
            Layer y = layers[Integer.parseInt(name.substring(7, dot))];
            return switch (name.substring(dot + 1)) {
                case "attn_norm.weight" -> y.attnNormW;
                case "attn_norm.bias" -> y.attnNormB;
                case "ffn_norm.weight" -> y.ffnNormW;
                case "ffn_norm.bias" -> y.ffnNormB;
                case "router.norm.weight" -> y.routerNormW;
                case "router.norm.bias" -> y.routerNormB;
                case "router.fc1.weight" -> y.fc1W;
                case "router.fc1.bias" -> y.fc1B;
                case "router.fc2.weight" -> y.fc2W;
                case "router.fc2.bias" -> y.fc2B;
                default -> null;
            };
        }
        return null;
    }

    /** The inference form of a training model's current parameters. */
    public static InferenceModel of(BitSkipModel model, Parallel par) {
        Backend be = model.backend();
        return fromWeights(model.config, name -> {
            Param p = model.params().get(name);
            if (p == null) {
                throw new IllegalArgumentException("the model has no parameter " + name);
            }
            float[] a = new float[p.size];
            be.download(p.value, a);
            return a;
        }, par);
    }

    /** The training model's name of the LM head weight (checkpoints, and float heads in deployable files). */
    public static final String HEAD_WEIGHT = "lm_head.weight";

    /** A new session (empty KV caches) planned to process up to maxRows tokens per layer call. */
    public Session newSession(int maxRows) {
        return new Session(this, maxRows);
    }

    public int layers() {
        return L;
    }

    public int vocabSize() {
        return V;
    }

    public int ctx() {
        return T;
    }

    /** Bytes of packed ternary weights of all projections. */
    public long packedBytes() {
        long b = 0;
        for (Layer y : layers) {
            for (TernaryLinear p : new TernaryLinear[] {y.q, y.k, y.v, y.o, y.up, y.down}) {
                b += p.bytes();
            }
        }
        return b;
    }

    /** Every projection, layer by layer in the order of {@link #PROJECTIONS}. */
    public java.util.List<TernaryLinear> projections() {
        java.util.List<TernaryLinear> out = new java.util.ArrayList<>();
        for (Layer y : layers) {
            out.addAll(java.util.List.of(y.q, y.k, y.v, y.o, y.up, y.down));
        }
        return out;
    }
}
