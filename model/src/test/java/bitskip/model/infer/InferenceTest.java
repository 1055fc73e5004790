package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.io.SafeTensors;
import bitskip.model.nn.Param;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.train.Checkpoints;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The deployed model computes the training model's W1.58/A8 forward; its file round-trips exactly. */
class InferenceTest {
    @TempDir
    Path dir;

    /**
     * Exported logits equal the checkpoint's evaluation forward (final LN + head, at every exit) within
     * float rounding: the training path computes Σ (s·q/Q)·(alpha·code) rounding every product and sum,
     * the deployed one rounds the exact integer sum once. Tolerance: 1e-4 · (1 + max |logit|) per logit,
     * for every profile × variant combination exported in both packings.
     */
    @Test
    void exportedLogitsEqualTheCheckpointForward() throws Exception {
        for (String profile : new String[] {"paper", "reference"}) {
            for (String variant : new String[] {"baseline", "bitskip", "h-only"}) {
                BitSkipConfig c = Micro.config(profile, variant, 8);
                exportedExitsEqualTheTrainingModel(Micro.training(c, 1, 11), profile + "/" + variant);
            }
        }
    }

    /**
     * The same at a context and head size where the deployed attention takes every one of its paths: scores of
     * four vectors of positions at a time, of one, and of the positions past the last whole vector; weighted
     * values of four vectors of components, of one, and the components past them (head size 84 = 64 + 16 + 4
     * with 16 float lanes, 2·32 + 2·8 + 4 with 8), over 100 positions (64 + 2·16 + 4; with 8 lanes 3·32 + 4).
     */
    @Test
    void longContextsAndOddHeadSizesEqualTheCheckpointForward() throws Exception {
        BitSkipConfig c = Configs.override(Micro.config("paper", "bitskip", 100),
                Map.of("d_model", "168", "n_heads", "2", "n_kv_heads", "1", "n_layers", "2"), "test");
        exportedExitsEqualTheTrainingModel(Micro.training(c, 1, 13), "long context");
    }

    /**
     * The same with the exit-head designs (exit_head = adapter, lowrank), given random non-zero weights (a
     * trained exit): every early exit's logits are the training model's (adapter, final LN, head; or final LN
     * and the head plus its low-rank term), in the file and after it.
     */
    @Test
    void exportedExitHeadsEqualTheCheckpointForward() throws Exception {
        for (String[] pvd : new String[][] {{"paper", "bitskip", "adapter"}, {"reference", "ee-only", "adapter"},
                {"paper", "ee-only", "lowrank"}, {"reference", "bitskip", "lowrank"}}) {
            BitSkipConfig c = Configs.override(Micro.config(pvd[0], pvd[1], 8), pvd[2].equals("lowrank")
                    ? Map.of("exit_head", "lowrank", "exit_rank", "3") : Map.of("exit_head", pvd[2]), "test");
            BitSkipModel train = Micro.training(c, 1, 11);
            randomExitHeads(train, 5);
            exportedExitsEqualTheTrainingModel(train, pvd[0] + "/" + pvd[1] + " " + pvd[2]);
        }
    }

    /** Gives every exit's own parameters random values (their zero-initialized matrix makes them the shared head). */
    static void randomExitHeads(BitSkipModel m, long seed) {
        java.util.Random r = new java.util.Random(seed);
        for (Param p : m.params().all()) {
            if (p.name.startsWith("exit_heads.")) {
                float[] a = new float[p.size];
                for (int i = 0; i < a.length; i++) {
                    a[i] = (float) ((p.name.endsWith("norm.weight") ? 1 : 0) + 0.3 * r.nextGaussian());
                }
                m.backend().upload(p.value, a);
            }
        }
    }

    private void exportedExitsEqualTheTrainingModel(BitSkipModel train, String what) throws Exception {
        BitSkipConfig c = train.config;
        int T = c.ctx(), V = c.vocabSize(), L = c.nLayers();
        int[] in = Micro.tokens(T, V, 3);
        train.evaluate(in, in, 1, true);
        Path ckpt = dir.resolve(what.replaceAll("[^a-z-]", "_") + ".safetensors");
        Checkpoints.saveModel(train, ckpt, 0);
        InferenceModel fromCkpt = DeployFile.fromCheckpoint(ckpt, Parallel.serial());
        for (DeployFile.Packing packing : DeployFile.Packing.values()) {
            Path file = dir.resolve(what.replaceAll("[^a-z-]", "_") + packing + ".bitskip");
            DeployFile.write(fromCkpt, file, packing);
            assertEquals(c.exitHead(), SafeTensors.read(file).metadata().get(DeployFile.EXIT_HEAD_KEY));
            InferenceModel m = DeployFile.read(file, new Parallel(2));
            assertTrue(DeployFile.sameWeights(fromCkpt, m), "pack -> unpack is the identity (" + packing + ")");
            for (int l = 0; l < L; l++) {
                float[] ref = train.exitLogits(l, true, T);
                Session s = m.newSession(4);
                s.advance(in, l + 1, null);
                double max = 0, worst = 0;
                for (float x : ref) {
                    max = Math.max(max, Math.abs(x));
                }
                for (int t = 0; t < T; t++) {
                    float[] got = s.logits(t);
                    for (int v = 0; v < V; v++) {
                        worst = Math.max(worst, Math.abs(got[v] - ref[t * V + v]));
                    }
                }
                assertTrue(worst <= 1e-4 * (1 + max), what + " exit " + (l + 1)
                        + ": max |diff| " + worst + " vs max |logit| " + max);
            }
        }
    }

    @Test
    void deployedCodesAreTheTrainingQuantization() {
        BitSkipConfig c = Micro.config("paper", "bitskip", 8);
        BitSkipModel train = Micro.training(c, 1, 4);
        InferenceModel m = InferenceModel.of(train, Parallel.serial());
        var w = train.params().get("layers.1.ffn.down_proj.weight");
        float[] a = new float[w.size];
        train.backend().download(w.value, a);
        byte[] codes = new byte[w.size];
        float alpha = bitskip.kernels.Quantize.ternaryForward(null, codes, a, w.size);
        TernaryLinear p = m.projections().get(6 + 5);
        assertEquals("layers.1.ffn.down_proj", p.name);
        assertEquals(alpha, p.alpha);
        assertArrayEquals(codes, p.codes());
    }

    @Test
    void aDeployableFileIsRefusedAsACheckpointAndViceVersa() throws Exception {
        BitSkipConfig c = Micro.config("paper", "baseline", 8);
        BitSkipModel train = Micro.training(c, 1, 4);
        Path ckpt = dir.resolve("model.safetensors");
        Checkpoints.saveModel(train, ckpt, 0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DeployFile.read(ckpt, Parallel.serial()));
        assertTrue(e.getMessage().contains("bitskip export"), e.getMessage());
        Path out = dir.resolve("m.bitskip");
        DeployFile.write(DeployFile.fromCheckpoint(ckpt, Parallel.serial()), out, DeployFile.Packing.TQ1);
        assertThrows(IllegalArgumentException.class, () -> DeployFile.fromCheckpoint(out, Parallel.serial()));
        assertTrue(out.toFile().length() < ckpt.toFile().length());
    }
}
