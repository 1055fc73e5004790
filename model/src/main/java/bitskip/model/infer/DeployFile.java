package bitskip.model.infer;

import bitskip.kernels.TernaryPack;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.io.SafeTensors;
import bitskip.model.train.Checkpoints;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The deployable model file: safetensors with
 * <ul>
 *   <li>for every quantized projection NAME ({@code layers.L.attn.q_proj}, ...): {@code NAME.codes}, U8
 *       (OC, row bytes), the ternary codes packed per {@code __metadata__["bitskip.packing.NAME.codes"]}
 *       = {@code {"scheme":"i2_g128"|"tq1_5","rows":OC,"cols":P}} (see {@code bitskip.kernels.TernaryPack});
 *       and {@code NAME.alpha}, F32 (1), its weight scale;</li>
 *   <li>every other parameter under its training name, F32: embeddings, the position table, all
 *       LayerNorms (the H-BitLinear ones included), routers, final norm, LM head;</li>
 *   <li>{@code __metadata__}: {@code bitskip.format} = {@value #FORMAT}, {@code bitskip.format_version} =
 *       {@value #VERSION}, {@code bitskip.config} = the configuration JSON, and the packing entries.</li>
 * </ul>
 * i2_g128 (2 bits per weight) is the in-memory layout of the packed GEMM, so it loads without
 * repacking; tq1_5 (1.6 bits) is smaller on disk and is repacked to i2_g128 when loaded.
 */
public final class DeployFile {
    public static final String FORMAT_KEY = "bitskip.format";
    public static final String FORMAT = "bitskip-ternary";
    public static final String VERSION_KEY = "bitskip.format_version";
    public static final String VERSION = "1";
    public static final String PACKING_PREFIX = "bitskip.packing.";

    /** The packing schemes of {@link TernaryPack}. */
    public enum Packing {
        I2("i2_g128"), TQ1("tq1_5");

        public final String scheme;

        Packing(String scheme) {
            this.scheme = scheme;
        }

        public static Packing of(String s) {
            for (Packing p : values()) {
                if (p.scheme.equals(s) || p.name().equalsIgnoreCase(s)) {
                    return p;
                }
            }
            throw new IllegalArgumentException("unknown packing '" + s + "'; known: i2_g128 (2 bits), tq1_5 (1.6 bits)");
        }
    }

    private DeployFile() {}

    /** Writes the model to file (atomically) with its projections packed by packing. */
    public static void write(InferenceModel m, Path file, Packing packing) throws IOException {
        SafeTensors.Builder b = SafeTensors.builder();
        BitSkipConfig c = m.config;
        floatTensors(m, (name, shape, data) -> b.put(name, shape, data));
        for (TernaryLinear p : m.projections()) {
            byte[] packed;
            int rowBytes;
            if (packing == Packing.I2) {
                packed = p.packed;
                rowBytes = TernaryPack.i2RowBytes(p.P);
            } else {
                rowBytes = TernaryPack.tq1RowBytes(p.P);
                packed = new byte[p.OC * rowBytes];
                TernaryPack.packTq1(packed, p.codes(), p.OC, p.P);
            }
            b.putBytes(p.name + ".codes", new int[] {p.OC, rowBytes}, packed);
            b.put(p.name + ".alpha", new int[] {1}, new float[] {p.alpha});
            b.metadata(PACKING_PREFIX + p.name + ".codes",
                    "{\"scheme\":\"" + packing.scheme + "\",\"rows\":" + p.OC + ",\"cols\":" + p.P + "}");
        }
        b.metadata(FORMAT_KEY, FORMAT);
        b.metadata(VERSION_KEY, VERSION);
        b.metadata(Checkpoints.CONFIG_KEY, Configs.toJson(c));
        b.write(file);
    }

    private interface FloatSink {
        void put(String name, int[] shape, float[] data);
    }

    private static void floatTensors(InferenceModel m, FloatSink out) {
        for (Map.Entry<String, int[]> e : InferenceModel.floatShapes(m.config).entrySet()) {
            out.put(e.getKey(), e.getValue(), m.floatParam(e.getKey()));
        }
    }

    /** Loads a deployable file; refuses another format or version, or a tensor of the wrong shape. */
    public static InferenceModel read(Path file, Parallel par) throws IOException {
        SafeTensors st = SafeTensors.read(file);
        String format = st.metadata().get(FORMAT_KEY);
        if (!FORMAT.equals(format)) {
            String hint = st.metadata().containsKey(Checkpoints.CONFIG_KEY)
                    ? " (a training checkpoint? convert it with: bitskip export --checkpoint " + file + " --out MODEL)"
                    : "";
            throw new IllegalArgumentException(file + ": not a deployable bitskip model (metadata " + FORMAT_KEY
                    + " = " + format + ", expected " + FORMAT + ")" + hint);
        }
        if (!VERSION.equals(st.metadata().get(VERSION_KEY))) {
            throw new IllegalArgumentException(file + ": format version " + st.metadata().get(VERSION_KEY)
                    + " is not supported (this build reads version " + VERSION + ")");
        }
        BitSkipConfig c = Configs.fromJson(st.metadata().get(Checkpoints.CONFIG_KEY),
                file + " (metadata " + Checkpoints.CONFIG_KEY + ")");
        Map<String, float[]> floats = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : InferenceModel.floatShapes(c).entrySet()) {
            floats.put(e.getKey(), st.floats(e.getKey(), e.getValue()));
        }
        java.util.List<InferenceModel.ProjectionSpec> specs = InferenceModel.projectionSpecs(c);
        InferenceModel.Layer[] layers = new InferenceModel.Layer[c.nLayers()];
        for (int l = 0; l < c.nLayers(); l++) {
            TernaryLinear[] p = new TernaryLinear[6];
            for (int i = 0; i < 6; i++) {
                p[i] = readProjection(st, file, specs.get(6 * l + i), floats);
            }
            layers[l] = InferenceModel.layer(p, "layers." + l + ".", floats::get);
        }
        return new InferenceModel(c, floats.get("tok_embeddings.weight"), floats.get("pos_embeddings.weight"),
                layers, floats.get("final_norm.weight"), floats.get("final_norm.bias"), floats.get("lm_head.weight"),
                par);
    }

    private static TernaryLinear readProjection(SafeTensors st, Path file, InferenceModel.ProjectionSpec spec,
                                                Map<String, float[]> floats) {
        TernaryLinear want = new TernaryLinear(spec.name(), spec.in(), spec.P(), spec.OC(), 1.0f,
                new byte[spec.OC() * TernaryPack.i2RowBytes(spec.P())], null, null);
        String codesName = want.name + ".codes";
        String meta = st.metadata().get(PACKING_PREFIX + codesName);
        if (meta == null) {
            throw new IllegalArgumentException(file + ": no packing metadata for " + codesName);
        }
        Map<?, ?> info;
        try {
            info = Configs.JSON.readValue(meta, Map.class);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": unreadable packing metadata for " + codesName + ": " + meta);
        }
        Packing packing = Packing.of(String.valueOf(info.get("scheme")));
        int rows = ((Number) info.get("rows")).intValue(), cols = ((Number) info.get("cols")).intValue();
        if (rows != want.OC || cols != want.P) {
            throw new IllegalArgumentException(file + ": " + codesName + " is " + rows + "x" + cols
                    + " but the configuration implies " + want.OC + "x" + want.P);
        }
        int rowBytes = packing == Packing.I2 ? TernaryPack.i2RowBytes(cols) : TernaryPack.tq1RowBytes(cols);
        st.requireShape(codesName, rows, rowBytes);
        byte[] packed = st.bytes(codesName);
        float alpha = st.floats(want.name + ".alpha", 1)[0];
        byte[] codes = new byte[rows * cols];
        // unpacking validates every field, for i2_g128 too
        if (packing == Packing.I2) {
            TernaryPack.unpackI2(codes, packed, rows, cols);
            return new TernaryLinear(want.name, want.in, want.P, want.OC, alpha, packed,
                    floats.get(want.name + ".norm.weight"), floats.get(want.name + ".norm.bias"));
        }
        TernaryPack.unpackTq1(codes, packed, rows, cols);
        return TernaryLinear.fromCodes(want.name, want.in, want.P, want.OC, alpha, codes,
                floats.get(want.name + ".norm.weight"), floats.get(want.name + ".norm.bias"));
    }

    /**
     * Builds the inference model of a training checkpoint (model.safetensors of a run): W1.58 weights
     * quantized exactly as the training forward quantizes them.
     */
    public static InferenceModel fromCheckpoint(Path checkpoint, Parallel par) throws IOException {
        SafeTensors st = SafeTensors.read(checkpoint);
        if (FORMAT.equals(st.metadata().get(FORMAT_KEY))) {
            throw new IllegalArgumentException(checkpoint + " is already a deployable model, not a checkpoint");
        }
        BitSkipConfig c = Checkpoints.readConfig(checkpoint);
        return InferenceModel.fromWeights(c, name -> {
            if (!st.contains(name)) {
                throw new IllegalArgumentException(checkpoint + " has no tensor " + name);
            }
            return st.floats(name);
        }, par);
    }

    /** Whether two models have the same codes, scales and float parameters (for tests). */
    static boolean sameWeights(InferenceModel a, InferenceModel b) {
        if (!a.config.equals(b.config)) {
            return false;
        }
        for (int i = 0; i < a.projections().size(); i++) {
            TernaryLinear x = a.projections().get(i), y = b.projections().get(i);
            if (x.alpha != y.alpha || !Arrays.equals(x.packed, y.packed) || !Arrays.equals(x.lnWeight, y.lnWeight)
                    || !Arrays.equals(x.lnBias, y.lnBias)) {
                return false;
            }
        }
        Map<String, float[]> fa = new LinkedHashMap<>(), fb = new LinkedHashMap<>();
        floatTensors(a, (n, s, d) -> fa.put(n, d));
        floatTensors(b, (n, s, d) -> fb.put(n, d));
        if (!fa.keySet().equals(fb.keySet())) {
            return false;
        }
        for (String n : fa.keySet()) {
            if (!Arrays.equals(fa.get(n), fb.get(n))) {
                return false;
            }
        }
        return true;
    }
}
