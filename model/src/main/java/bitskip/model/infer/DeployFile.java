package bitskip.model.infer;

import bitskip.kernels.TernaryPack;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.io.SafeTensors;
import bitskip.model.train.Checkpoints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.zip.CRC32C;

/**
 * The deployable model file, format version {@value #VERSION}: safetensors with the tensors and metadata
 * described in {@code docs/deployable-format.md}. In short:
 * <ul>
 *   <li>every quantized projection NAME: {@code NAME.codes} (U8, packed ternary codes, scheme in
 *       {@code bitskip.packing.NAME.codes}) and {@code NAME.alpha} (F32 [1], finite, ≥ 0);</li>
 *   <li>every other parameter but the head under its training name, F32;</li>
 *   <li>the LM head as {@code bitskip.head} says: {@code f32} ({@code lm_head.weight}, F32 (V, C)) or
 *       {@code int8} ({@code lm_head.int8}, U8 (V, C) holding two's-complement int8 codes in [-127, 127], and
 *       {@code lm_head.scale}, F32 (V), finite, ≥ 0);</li>
 *   <li>optionally the draft vocabulary {@code draft.ids} (I32 (V_d), ascending ids) announced by
 *       {@code bitskip.draft};</li>
 *   <li>{@code bitskip.exit_head}, the configuration's {@code exit_head}: {@code shared} (every exit uses the
 *       final norm and the shared head), {@code adapter} (each early exit l &lt; L−1 first applies its residual
 *       adapter, F32 tensors {@code exit_heads.<l>.norm.weight}, {@code .norm.bias} (C) and
 *       {@code .proj.weight} (C, C)) or {@code lowrank} (each early exit adds U_l·(D_l·x) to the head's logits,
 *       F32 tensors {@code exit_heads.<l>.down.weight} (r, C) and {@code .up.weight} (V, r)); other values are
 *       refused by name;</li>
 *   <li>{@code bitskip.checksums}: a JSON object giving the CRC-32C of every tensor's data bytes.</li>
 * </ul>
 * Loading refuses, with one line naming the file and the tensor or field: another format or version, a
 * checksum mismatch, a missing or unannounced tensor, a shape or a metadata field that does not match the
 * configuration, a non-finite float anywhere, and a negative alpha or head scale.
 */
public final class DeployFile {
    public static final String FORMAT_KEY = "bitskip.format";
    public static final String FORMAT = "bitskip-ternary";
    public static final String VERSION_KEY = "bitskip.format_version";
    public static final String VERSION = "2";
    public static final String PACKING_PREFIX = "bitskip.packing.";
    public static final String HEAD_KEY = "bitskip.head";
    public static final String DRAFT_KEY = "bitskip.draft";
    public static final String EXIT_HEAD_KEY = "bitskip.exit_head";
    public static final String CHECKSUMS_KEY = "bitskip.checksums";
    static final String HEAD_INT8 = "lm_head.int8", HEAD_SCALE = "lm_head.scale", DRAFT_IDS = "draft.ids";

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

    /** Where a draft vocabulary came from, for the file's metadata: what was counted and the share it covers. */
    public record DraftSource(String selection, String text, double coverage) {}

    private DeployFile() {}

    /** Writes the model (its head in its own format, its draft head if any) with the projections packed by packing. */
    public static void write(InferenceModel m, Path file, Packing packing) throws IOException {
        write(m, file, packing, null);
    }

    /** As {@link #write(InferenceModel, Path, Packing)}, recording where the draft vocabulary came from. */
    public static void write(InferenceModel m, Path file, Packing packing, DraftSource draftSource) throws IOException {
        SafeTensors.Builder b = SafeTensors.builder();
        Map<String, String> crc = new TreeMap<>();
        BitSkipConfig c = m.config;
        for (Map.Entry<String, int[]> e : InferenceModel.floatShapes(c).entrySet()) {
            putFloats(b, crc, e.getKey(), e.getValue(), m.floatParam(e.getKey()));
        }
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
            crc.put(p.name + ".codes", crc32c(packed));
            putFloats(b, crc, p.name + ".alpha", new int[] {1}, new float[] {p.alpha});
            b.metadata(PACKING_PREFIX + p.name + ".codes",
                    "{\"scheme\":\"" + packing.scheme + "\",\"rows\":" + p.OC + ",\"cols\":" + p.P + "}");
        }
        LmHead h = m.head;
        ObjectNode head = Configs.JSON.createObjectNode().put("format", h.format.id);
        if (h.format == LmHead.Format.F32) {
            putFloats(b, crc, InferenceModel.HEAD_WEIGHT, new int[] {h.rows, h.C}, h.weights());
        } else {
            head.put("weight_levels", LmHead.W_LEVELS).put("activation_levels", h.xLevels);
            b.putBytes(HEAD_INT8, new int[] {h.rows, h.C}, h.codes());
            crc.put(HEAD_INT8, crc32c(h.codes()));
            putFloats(b, crc, HEAD_SCALE, new int[] {h.rows}, h.scales());
        }
        b.metadata(HEAD_KEY, head.toString());
        if (m.draft != null) {
            int[] ids = m.draft.ids;
            b.putInts(DRAFT_IDS, new int[] {ids.length}, ids);
            crc.put(DRAFT_IDS, crc32c(ids));
            ObjectNode d = Configs.JSON.createObjectNode().put("tokens", ids.length);
            if (draftSource != null) {
                d.put("selection", draftSource.selection()).put("text", draftSource.text())
                        .put("coverage", Math.round(draftSource.coverage() * 1e6) / 1e6);
            }
            b.metadata(DRAFT_KEY, d.toString());
        }
        b.metadata(EXIT_HEAD_KEY, c.exitHead());
        b.metadata(CHECKSUMS_KEY, Configs.JSON.valueToTree(crc).toString());
        b.metadata(FORMAT_KEY, FORMAT);
        b.metadata(VERSION_KEY, VERSION);
        b.metadata(Checkpoints.CONFIG_KEY, Configs.toJson(c));
        b.write(file);
    }

    private static void putFloats(SafeTensors.Builder b, Map<String, String> crc, String name, int[] shape, float[] data) {
        b.put(name, shape, data);
        crc.put(name, crc32c(data));
    }

    /** Loads a deployable file; refuses it, naming the file and the tensor or field, unless it is wholly valid. */
    public static InferenceModel read(Path file, Parallel par) throws IOException {
        SafeTensors st = SafeTensors.read(file);
        Map<String, String> meta = st.metadata();
        String format = meta.get(FORMAT_KEY);
        if (!FORMAT.equals(format)) {
            String hint = meta.containsKey(Checkpoints.CONFIG_KEY)
                    ? " (a training checkpoint? convert it with: bitskip export --checkpoint " + file + " --out MODEL)"
                    : "";
            throw new IllegalArgumentException(file + ": not a deployable bitskip model (metadata " + FORMAT_KEY
                    + " = " + format + ", expected " + FORMAT + ")" + hint);
        }
        if (!VERSION.equals(meta.get(VERSION_KEY))) {
            throw new IllegalArgumentException(file + ": format version " + meta.get(VERSION_KEY)
                    + " is not supported (this build reads version " + VERSION
                    + "; export the checkpoint again with this build: bitskip export)");
        }
        verifyChecksums(st, file);
        BitSkipConfig c = Configs.fromJson(st.metadata(Checkpoints.CONFIG_KEY),
                file + " (metadata " + Checkpoints.CONFIG_KEY + ")");
        String exitHead = st.metadata(EXIT_HEAD_KEY);
        if (!Arrays.asList(BitSkipConfig.EXIT_HEADS).contains(exitHead)) {
            throw new IllegalArgumentException(file + ": metadata " + EXIT_HEAD_KEY + " = " + exitHead
                    + " is not supported (this build reads " + String.join(", ", BitSkipConfig.EXIT_HEADS) + ")");
        }
        if (!exitHead.equals(c.exitHead())) {
            throw new IllegalArgumentException(file + ": metadata " + EXIT_HEAD_KEY + " = " + exitHead
                    + " does not match the configuration's exit_head = " + c.exitHead());
        }
        Set<String> expected = new LinkedHashSet<>();
        Map<String, float[]> floats = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : InferenceModel.floatShapes(c).entrySet()) {
            floats.put(e.getKey(), finite(st, file, e.getKey(), e.getValue()));
            expected.add(e.getKey());
        }
        List<InferenceModel.ProjectionSpec> specs = InferenceModel.projectionSpecs(c);
        InferenceModel.Layer[] layers = new InferenceModel.Layer[c.nLayers()];
        for (int l = 0; l < c.nLayers(); l++) {
            TernaryLinear[] p = new TernaryLinear[6];
            for (int i = 0; i < 6; i++) {
                p[i] = readProjection(st, file, specs.get(6 * l + i), floats);
                expected.add(p[i].name + ".codes");
                expected.add(p[i].name + ".alpha");
            }
            layers[l] = InferenceModel.layer(p, "layers." + l + ".", floats::get);
        }
        LmHead head = readHead(st, file, c, expected);
        DraftHead draft = null;
        if (meta.containsKey(DRAFT_KEY)) {
            JsonNode d = metaObject(st, file, DRAFT_KEY);
            int vd = intField(d, file, DRAFT_KEY, "tokens");
            int[] ids = st.ints(DRAFT_IDS, vd);
            expected.add(DRAFT_IDS);
            try {
                draft = new DraftHead(ids, head);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(file + ": tensor " + DRAFT_IDS + ": " + e.getMessage());
            }
        }
        for (String name : st.names()) {
            if (!expected.contains(name)) {
                throw new IllegalArgumentException(file + " has a tensor " + name
                        + " that its configuration and metadata do not announce");
            }
        }
        return new InferenceModel(c, floats.get("tok_embeddings.weight"), floats.get("pos_embeddings.weight"),
                layers, floats.get("final_norm.weight"), floats.get("final_norm.bias"),
                InferenceModel.ExitHeads.of(c, floats::get), head, draft, par);
    }

    private static LmHead readHead(SafeTensors st, Path file, BitSkipConfig c, Set<String> expected) {
        JsonNode h = metaObject(st, file, HEAD_KEY);
        String f = textField(h, file, HEAD_KEY, "format");
        int V = c.vocabSize(), C = c.dModel();
        if (f.equals(LmHead.Format.F32.id)) {
            expected.add(InferenceModel.HEAD_WEIGHT);
            return LmHead.f32(finite(st, file, InferenceModel.HEAD_WEIGHT, V, C), V, C);
        }
        if (!f.equals(LmHead.Format.INT8.id)) {
            throw new IllegalArgumentException(file + ": metadata " + HEAD_KEY + " field format = " + f
                    + " is not a head format (known: f32, int8)");
        }
        requireInt(h, file, "weight_levels", LmHead.W_LEVELS);
        int xLevels = intField(h, file, HEAD_KEY, "activation_levels");
        if (!LmHead.knownActivationLevels(xLevels)) {
            throw new IllegalArgumentException(file + ": metadata " + HEAD_KEY + " field activation_levels = " + xLevels
                    + ", but this build computes the int8 head with 255 (9-bit) or 127 (8-bit) activation codes");
        }
        st.requireShape(HEAD_INT8, V, C);
        byte[] q = st.bytes(HEAD_INT8);
        for (int i = 0; i < q.length; i++) {
            if (q[i] == Byte.MIN_VALUE) {
                throw new IllegalArgumentException(file + ": tensor " + HEAD_INT8 + " holds -128 at row " + i / C
                        + ", column " + i % C + " (int8 head codes lie in [-127, 127])");
            }
        }
        float[] scale = finite(st, file, HEAD_SCALE, V);
        for (int o = 0; o < V; o++) {
            if (scale[o] < 0) {
                throw new IllegalArgumentException(file + ": tensor " + HEAD_SCALE + " is negative at row " + o
                        + " (" + scale[o] + ")");
            }
        }
        expected.add(HEAD_INT8);
        expected.add(HEAD_SCALE);
        return LmHead.int8(q, scale, V, C, xLevels);
    }

    private static void requireInt(JsonNode h, Path file, String field, int want) {
        int got = intField(h, file, HEAD_KEY, field);
        if (got != want) {
            throw new IllegalArgumentException(file + ": metadata " + HEAD_KEY + " field " + field + " = " + got
                    + ", but this build computes the int8 head with " + want);
        }
    }

    private static TernaryLinear readProjection(SafeTensors st, Path file, InferenceModel.ProjectionSpec spec,
                                                Map<String, float[]> floats) {
        String codesName = spec.name() + ".codes";
        String key = PACKING_PREFIX + codesName;
        if (!st.metadata().containsKey(key)) {
            throw new IllegalArgumentException(file + ": no packing metadata for " + codesName);
        }
        JsonNode info = metaObject(st, file, key);
        Packing packing;
        try {
            packing = Packing.of(textField(info, file, key, "scheme"));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": metadata " + key + ": " + e.getMessage());
        }
        int rows = intField(info, file, key, "rows"), cols = intField(info, file, key, "cols");
        if (rows != spec.OC() || cols != spec.P()) {
            throw new IllegalArgumentException(file + ": " + codesName + " is " + rows + "x" + cols
                    + " but the configuration implies " + spec.OC() + "x" + spec.P());
        }
        int rowBytes = packing == Packing.I2 ? TernaryPack.i2RowBytes(cols) : TernaryPack.tq1RowBytes(cols);
        st.requireShape(codesName, rows, rowBytes);
        byte[] packed = st.bytes(codesName);
        String alphaName = spec.name() + ".alpha";
        float alpha = finite(st, file, alphaName, 1)[0];
        if (alpha < 0) {
            throw new IllegalArgumentException(file + ": tensor " + alphaName + " is negative (" + alpha + ")");
        }
        byte[] codes = new byte[rows * cols];
        float[] lnW = floats.get(spec.name() + ".norm.weight"), lnB = floats.get(spec.name() + ".norm.bias");
        try { // unpacking validates every field, for i2_g128 too
            if (packing == Packing.I2) {
                TernaryPack.unpackI2(codes, packed, rows, cols);
                return new TernaryLinear(spec.name(), spec.in(), spec.P(), spec.OC(), alpha, packed, lnW, lnB);
            }
            TernaryPack.unpackTq1(codes, packed, rows, cols);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": tensor " + codesName + ": " + e.getMessage());
        }
        return TernaryLinear.fromCodes(spec.name(), spec.in(), spec.P(), spec.OC(), alpha, codes, lnW, lnB);
    }

    /** The F32 tensor after checking its shape and that every value is finite. */
    private static float[] finite(SafeTensors st, Path file, String name, int... shape) {
        float[] a = st.floats(name, shape);
        for (int i = 0; i < a.length; i++) {
            if (!Float.isFinite(a[i])) {
                throw new IllegalArgumentException(file + ": tensor " + name + " holds " + a[i] + " at index " + i
                        + " (weights, scales and alphas must be finite)");
            }
        }
        return a;
    }

    // ---- metadata fields: strict, one line naming the file, the key, the field and the value --------------

    private static JsonNode metaObject(SafeTensors st, Path file, String key) {
        String text = st.metadata().get(key);
        if (text == null) {
            throw new IllegalArgumentException(file + ": no metadata entry " + key);
        }
        JsonNode n;
        try {
            n = Configs.JSON.readTree(text);
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": metadata " + key + " is not valid JSON: " + text);
        }
        if (n == null || !n.isObject()) {
            throw new IllegalArgumentException(file + ": metadata " + key + " must be a JSON object, got " + text);
        }
        return n;
    }

    private static int intField(JsonNode n, Path file, String key, String field) {
        JsonNode v = n.get(field);
        if (v == null) {
            throw new IllegalArgumentException(file + ": metadata " + key + " has no field " + field);
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < 0) {
            throw new IllegalArgumentException(file + ": metadata " + key + " field " + field + " = " + v
                    + " is not a non-negative integer");
        }
        return v.intValue();
    }

    private static String textField(JsonNode n, Path file, String key, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException(file + ": metadata " + key + " field " + field + " = " + v
                    + " is not a string");
        }
        return v.textValue();
    }

    // ---- checksums: CRC-32C of each tensor's little-endian data bytes ---------------------------------

    private static void verifyChecksums(SafeTensors st, Path file) {
        JsonNode sums = metaObject(st, file, CHECKSUMS_KEY);
        for (Iterator<String> it = sums.fieldNames(); it.hasNext(); ) {
            String name = it.next();
            if (!st.contains(name)) {
                throw new IllegalArgumentException(file + ": metadata " + CHECKSUMS_KEY + " names a tensor " + name
                        + " that the file does not have");
            }
        }
        for (String name : st.names()) {
            String want = sums.has(name) && sums.get(name).isTextual() ? sums.get(name).textValue() : null;
            if (want == null) {
                throw new IllegalArgumentException(file + ": metadata " + CHECKSUMS_KEY + " has no checksum for tensor "
                        + name);
            }
            String got = switch (st.dtype(name)) {
                case F32 -> crc32c(st.floats(name));
                case I32 -> crc32c(st.ints(name));
                case U8 -> crc32c(st.bytes(name));
                case I64 -> throw new IllegalArgumentException(file + ": tensor " + name
                        + " has dtype I64, which a deployable model does not use");
            };
            if (!got.equals(want)) {
                throw new IllegalArgumentException(file + ": tensor " + name + " fails its checksum (CRC-32C " + got
                        + ", stored " + want + "): the file is damaged");
            }
        }
    }

    static String crc32c(byte[] a) {
        CRC32C crc = new CRC32C();
        crc.update(a, 0, a.length);
        return hex(crc.getValue());
    }

    static String crc32c(float[] a) {
        return crc32c(a.length, (buf, from, n) -> buf.asFloatBuffer().put(a, from, n));
    }

    static String crc32c(int[] a) {
        return crc32c(a.length, (buf, from, n) -> buf.asIntBuffer().put(a, from, n));
    }

    /** Puts elements [from, from + n) of an array of 4-byte elements into buf at its position 0. */
    private interface Chunk {
        void put(ByteBuffer buf, int from, int n);
    }

    /** CRC-32C of length 4-byte elements as little-endian bytes, converted 16K elements at a time. */
    private static String crc32c(int length, Chunk chunk) {
        CRC32C crc = new CRC32C();
        ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < length; ) {
            int n = Math.min(length - i, buf.capacity() / 4);
            buf.clear();
            chunk.put(buf, i, n);
            buf.limit(4 * n);
            crc.update(buf);
            i += n;
        }
        return hex(crc.getValue());
    }

    private static String hex(long v) {
        return String.format(Locale.ROOT, "%08x", v);
    }

    // ---- from a training checkpoint ------------------------------------------------------------------

    /**
     * Builds the inference model of a training checkpoint (model.safetensors of a run): W1.58 weights
     * quantized exactly as the training forward quantizes them. The checkpoint must hold exactly the tensors
     * its stored configuration implies, each of its shape and finite (as {@code eval} requires): a file whose
     * configuration was edited (say n_layers) is refused, not exported with a layer dropped.
     */
    public static InferenceModel fromCheckpoint(Path checkpoint, Parallel par) throws IOException {
        SafeTensors st = SafeTensors.read(checkpoint);
        if (FORMAT.equals(st.metadata().get(FORMAT_KEY))) {
            throw new IllegalArgumentException(checkpoint + " is already a deployable model, not a checkpoint");
        }
        BitSkipConfig c = Checkpoints.readConfig(checkpoint);
        Map<String, int[]> shapes = checkpointShapes(c);
        for (String name : st.names()) {
            if (!shapes.containsKey(name)) {
                throw new IllegalArgumentException("checkpoint " + checkpoint + " has a tensor " + name
                        + " that the model of its configuration (n_layers " + c.nLayers() + ", d_model " + c.dModel()
                        + ") does not have");
            }
        }
        return InferenceModel.fromWeights(c, name -> {
            if (!st.contains(name)) {
                throw new IllegalArgumentException("checkpoint " + checkpoint + " has no tensor " + name
                        + ", which the model of its configuration has");
            }
            return finite(st, checkpoint, name, shapes.get(name));
        }, par);
    }

    /** Every tensor of a training checkpoint of configuration c, with its shape. */
    static Map<String, int[]> checkpointShapes(BitSkipConfig c) {
        Map<String, int[]> shapes = new LinkedHashMap<>(InferenceModel.floatShapes(c));
        for (InferenceModel.ProjectionSpec s : InferenceModel.projectionSpecs(c)) {
            shapes.put(s.name() + ".weight", new int[] {s.OC(), s.P()});
        }
        shapes.put(InferenceModel.HEAD_WEIGHT, new int[] {c.vocabSize(), c.dModel()});
        return shapes;
    }

    /** Whether two models have the same codes, scales, float parameters, heads and draft vocabularies (for tests). */
    static boolean sameWeights(InferenceModel a, InferenceModel b) {
        if (!a.config.equals(b.config) || !a.head.sameAs(b.head) || (a.draft == null) != (b.draft == null)
                || a.draft != null && !Arrays.equals(a.draft.ids, b.draft.ids)) {
            return false;
        }
        for (int i = 0; i < a.projections().size(); i++) {
            TernaryLinear x = a.projections().get(i), y = b.projections().get(i);
            if (x.alpha != y.alpha || !Arrays.equals(x.packed, y.packed) || !Arrays.equals(x.lnWeight, y.lnWeight)
                    || !Arrays.equals(x.lnBias, y.lnBias)) {
                return false;
            }
        }
        for (String n : InferenceModel.floatShapes(a.config).keySet()) {
            if (!Arrays.equals(a.floatParam(n), b.floatParam(n))) {
                return false;
            }
        }
        return true;
    }
}
