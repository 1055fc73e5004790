package bitskip.model.train;

import bitskip.engine.Backend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.io.SafeTensors;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/**
 * Model and optimizer checkpoints in safetensors (float32, little endian), with the full configuration as
 * JSON in {@code __metadata__["bitskip.config"]}. Every file is written atomically, and never with a NaN or an
 * infinity in it. Loading refuses a file whose configuration does not describe the model, or that lacks a
 * tensor, has an extra one, has one of the wrong shape or one holding a NaN or an infinity, naming the file
 * and the tensor or field.
 */
public final class Checkpoints {
    public static final String CONFIG_KEY = "bitskip.config";
    public static final String STEP_KEY = "bitskip.step";

    private Checkpoints() {}

    /** Writes every parameter of the model to file, with the configuration and the step in the metadata. */
    public static void saveModel(BitSkipModel model, Path file, int step) throws IOException {
        Backend be = model.backend();
        SafeTensors.Builder b = SafeTensors.builder();
        for (Param p : model.params().all()) {
            float[] data = new float[p.size];
            be.download(p.value, data);
            b.put(p.name, p.shape, requireFiniteToWrite(file, p.name, data));
        }
        b.metadata(CONFIG_KEY, Configs.toJson(model.config));
        b.metadata(STEP_KEY, Integer.toString(step));
        b.write(file);
    }

    /** AdamW's moments of every parameter ({@code NAME.adam_m}, {@code NAME.adam_v}). */
    public static void saveOptimizer(BitSkipModel model, Path file, int step) throws IOException {
        Backend be = model.backend();
        SafeTensors.Builder b = SafeTensors.builder();
        for (Param p : model.params().all()) {
            float[] m = new float[p.size], v = new float[p.size];
            be.download(p.m(be), m);
            be.download(p.v(be), v);
            b.put(p.name + ".adam_m", p.shape, requireFiniteToWrite(file, p.name + ".adam_m", m));
            b.put(p.name + ".adam_v", p.shape, requireFiniteToWrite(file, p.name + ".adam_v", v));
        }
        b.metadata(STEP_KEY, Integer.toString(step));
        b.write(file);
    }

    /** The configuration stored in a model checkpoint. */
    public static BitSkipConfig readConfig(Path file) throws IOException {
        return configOf(SafeTensors.read(file), file);
    }

    static BitSkipConfig configOf(SafeTensors st, Path file) {
        String json = st.metadata().get(CONFIG_KEY);
        if (json == null) {
            throw new IllegalArgumentException(file + ": no " + CONFIG_KEY + " in the safetensors metadata; "
                    + "not a bitskip checkpoint");
        }
        return Configs.fromJson(json, file + " (metadata " + CONFIG_KEY + ")");
    }

    /** Loads the parameters of file into model; returns the step stored with them (or -1). */
    public static int loadModel(BitSkipModel model, Path file) throws IOException {
        SafeTensors st = SafeTensors.read(file);
        BitSkipConfig stored = configOf(st, file);
        requireSameArchitecture(stored, model.config, file);
        Set<String> expected = new HashSet<>();
        Backend be = model.backend();
        for (Param p : model.params().all()) {
            expected.add(p.name);
            if (!st.contains(p.name)) {
                throw new IllegalArgumentException(file + " has no tensor " + p.name);
            }
            be.upload(p.value, requireFiniteToLoad(file, p.name, st.floats(p.name, p.shape)));
        }
        for (String name : st.names()) {
            if (!expected.contains(name)) {
                throw new IllegalArgumentException(file + " has a tensor " + name
                        + " that the model of its configuration does not have");
            }
        }
        return stepOf(st);
    }

    /** Loads AdamW's moments; returns the stored step. */
    public static int loadOptimizer(BitSkipModel model, Path file) throws IOException {
        SafeTensors st = SafeTensors.read(file);
        Backend be = model.backend();
        for (Param p : model.params().all()) {
            for (String kind : new String[] {"adam_m", "adam_v"}) {
                String name = p.name + "." + kind;
                if (!st.contains(name)) {
                    throw new IllegalArgumentException(file + " has no tensor " + name);
                }
                be.upload(kind.equals("adam_m") ? p.m(be) : p.v(be), requireFiniteToLoad(file, name, st.floats(name, p.shape)));
            }
        }
        if (st.names().size() != 2 * model.params().all().size()) {
            throw new IllegalArgumentException(file + " has " + st.names().size() + " tensors, expected "
                    + 2 * model.params().all().size() + " (two moments per parameter)");
        }
        return stepOf(st);
    }

    /** No checkpoint is ever written with a NaN or an infinity in it. */
    private static float[] requireFiniteToWrite(Path file, String tensor, float[] data) {
        String bad = NonFinite.describe(data);
        if (bad != null) {
            throw new NonFiniteException("refusing to write " + file + ": tensor " + tensor + " is not finite (" + bad + ")");
        }
        return data;
    }

    /** A checkpoint with a NaN or an infinity in it is refused, naming the tensor. */
    private static float[] requireFiniteToLoad(Path file, String tensor, float[] data) {
        String bad = NonFinite.describe(data);
        if (bad != null) {
            throw new IllegalArgumentException(file + ": tensor " + tensor + " is not finite (" + bad + "); refusing to load it");
        }
        return data;
    }

    private static int stepOf(SafeTensors st) {
        String s = st.metadata().get(STEP_KEY);
        return s == null ? -1 : Integer.parseInt(s);
    }

    /** The fields that decide the tensors' shapes and meaning must agree. */
    static void requireSameArchitecture(BitSkipConfig stored, BitSkipConfig model, Path file) {
        check(file, "vocab_size", stored.vocabSize(), model.vocabSize());
        check(file, "d_model", stored.dModel(), model.dModel());
        check(file, "n_layers", stored.nLayers(), model.nLayers());
        check(file, "n_heads", stored.nHeads(), model.nHeads());
        check(file, "n_kv_heads", stored.nKvHeads(), model.nKvHeads());
        check(file, "ffn_dim", stored.ffnDim(), model.ffnDim());
        check(file, "ctx", stored.ctx(), model.ctx());
        check(file, "hadamard", stored.hadamard(), model.hadamard());
        check(file, "learned_positions", stored.learnedPositions(), model.learnedPositions());
    }

    private static void check(Path file, String field, Object stored, Object wanted) {
        if (!stored.equals(wanted)) {
            throw new IllegalArgumentException(file + ": configuration field " + field + " is " + stored
                    + " in the checkpoint but " + wanted + " in the model it is loaded into");
        }
    }

    /** Whether a folder holds a complete resumable checkpoint. */
    static boolean isComplete(Path dir) {
        return Files.isRegularFile(dir.resolve("model.safetensors"))
                && Files.isRegularFile(dir.resolve("optimizer.safetensors"))
                && Files.isRegularFile(dir.resolve("state.json"));
    }
}
