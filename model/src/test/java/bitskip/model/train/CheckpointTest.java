package bitskip.model.train;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.JavaBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.io.SafeTensors;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {

    @Test
    void namesFollowTheCheckpointLayout() {
        for (String profile : Presets.PROFILES) {
            BitSkipConfig c = Presets.build("micro", profile, "bitskip");
            BitSkipModel m = new BitSkipModel(c, new JavaBackend(), 1);
            int d = c.dModel(), kv = c.nKvHeads() * c.headSize();
            assertShape(m, "tok_embeddings.weight", c.vocabSize(), d);
            assertShape(m, "layers.0.attn.q_proj.weight", d, d);
            assertShape(m, "layers.0.attn.k_proj.weight", kv, d);
            assertShape(m, "layers.2.attn.o_proj.norm.weight", d);
            assertShape(m, "layers.1.ffn.up_proj.weight", c.ffnDim(), d);
            assertShape(m, "layers.1.ffn.down_proj.weight", d, c.ffnDim());
            assertShape(m, "layers.1.ffn.down_proj.norm.bias", c.ffnDim());
            assertShape(m, "layers.0.router.fc1.weight", d / 4, d);
            assertShape(m, "layers.0.router.fc2.weight", 1, d / 4);
            assertShape(m, "layers.0.router.fc2.bias", 1);
            assertShape(m, "final_norm.weight", d);
            assertShape(m, "lm_head.weight", c.vocabSize(), d);
            assertEquals(profile.equals("reference"), m.params().get("pos_embeddings.weight") != null);
        }
        BitSkipModel b = new BitSkipModel(Presets.build("micro", "paper", "baseline"), new JavaBackend(), 1);
        assertNull(b.params().get("layers.0.attn.q_proj.norm.weight"), "BitLinear has no LayerNorm of its own");
        assertNull(b.params().get("exit_heads.0.proj.weight"), "the shared head has no per-exit parameters");
        BitSkipConfig ac = Configs.override(Presets.build("micro", "paper", "ee-only"), Map.of("exit_head", "adapter"), "t");
        BitSkipModel a = new BitSkipModel(ac, new JavaBackend(), 1);
        int d = ac.dModel();
        for (int l = 0; l < ac.nLayers() - 1; l++) {
            assertShape(a, "exit_heads." + l + ".norm.weight", d);
            assertShape(a, "exit_heads." + l + ".norm.bias", d);
            assertShape(a, "exit_heads." + l + ".proj.weight", d, d);
        }
        assertNull(a.params().get("exit_heads." + (ac.nLayers() - 1) + ".proj.weight"), "the last layer exits plainly");
        a.initialize(5);
        float[] w = new float[d * d];
        a.backend().download(a.params().get("exit_heads.0.proj.weight").value, w);
        assertArrayEquals(new float[d * d], w, "an adapter starts at zero (the identity)");
        BitSkipConfig lc = Configs.override(Presets.build("micro", "reference", "bitskip"),
                Map.of("exit_head", "lowrank", "exit_rank", "3"), "t");
        BitSkipModel lr = new BitSkipModel(lc, new JavaBackend(), 1);
        for (int l = 0; l < lc.nLayers() - 1; l++) {
            assertShape(lr, "exit_heads." + l + ".down.weight", 3, d);
            assertShape(lr, "exit_heads." + l + ".up.weight", lc.vocabSize(), 3);
        }
        assertNull(lr.params().get("exit_heads." + (lc.nLayers() - 1) + ".up.weight"), "the last layer exits plainly");
        lr.initialize(5);
        float[] up = new float[lc.vocabSize() * 3];
        lr.backend().download(lr.params().get("exit_heads.1.up.weight").value, up);
        assertArrayEquals(new float[up.length], up, "a low-rank correction starts at zero (the shared head)");
    }

    private static void assertShape(BitSkipModel m, String name, int... shape) {
        Param p = m.params().get(name);
        assertNotNull(p, name);
        assertArrayEquals(shape, p.shape, name);
    }

    @Test
    void saveLoadRoundTripsAndBadFilesAreRefusedNamingTheProblem(@TempDir Path dir) throws Exception {
        BitSkipConfig c = Presets.build("micro", "paper", "bitskip");
        BitSkipModel m = new BitSkipModel(c, new JavaBackend(), 1);
        m.initialize(3);
        Path f = dir.resolve("model.safetensors");
        Checkpoints.saveModel(m, f, 12);
        assertEquals(c, Checkpoints.readConfig(f));

        BitSkipModel n = new BitSkipModel(c, new JavaBackend(), 1);
        assertEquals(12, Checkpoints.loadModel(n, f));
        for (Param p : m.params().all()) {
            float[] a = new float[p.size], b = new float[p.size];
            m.backend().download(p.value, a);
            n.backend().download(n.params().get(p.name).value, b);
            assertArrayEquals(a, b, p.name);
        }

        // truncated
        byte[] bytes = Files.readAllBytes(f);
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length - 100));
        assertMessage(() -> Checkpoints.loadModel(n, cut), "cut.safetensors");

        // another architecture
        BitSkipModel wide = new BitSkipModel(Configs.override(c, Map.of("hadamard", "false"), "t"), new JavaBackend(), 1);
        assertMessage(() -> Checkpoints.loadModel(wide, f), "hadamard");

        // a tensor missing, and one of the wrong shape
        SafeTensors st = SafeTensors.read(f);
        SafeTensors.Builder missing = SafeTensors.builder(), wrong = SafeTensors.builder();
        for (String name : st.names()) {
            if (!name.equals("layers.1.attn.v_proj.weight")) {
                missing.put(name, st.shape(name), st.floats(name));
            }
            int[] shape = st.shape(name);
            if (name.equals("final_norm.bias")) {
                wrong.put(name, new int[] {shape[0] / 2}, Arrays.copyOf(st.floats(name), shape[0] / 2));
            } else {
                wrong.put(name, shape, st.floats(name));
            }
        }
        st.metadata().forEach((k, v) -> {
            missing.metadata(k, v);
            wrong.metadata(k, v);
        });
        Path pm = dir.resolve("missing.safetensors"), pw = dir.resolve("wrong.safetensors");
        missing.write(pm);
        wrong.write(pw);
        assertMessage(() -> Checkpoints.loadModel(n, pm), "layers.1.attn.v_proj.weight");
        assertMessage(() -> Checkpoints.loadModel(n, pw), "final_norm.bias");

        // no configuration in the metadata
        SafeTensors.Builder bare = SafeTensors.builder();
        bare.put("x", new int[] {1}, new float[] {1});
        Path pb = dir.resolve("bare.safetensors");
        bare.write(pb);
        assertMessage(() -> Checkpoints.readConfig(pb), "bitskip.config");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable e, String what) {
        Exception ex = assertThrows(Exception.class, e);
        assertTrue(ex.getMessage() != null && ex.getMessage().contains(what), "message should name " + what + ": " + ex.getMessage());
    }
}
