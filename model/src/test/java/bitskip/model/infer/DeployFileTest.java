package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.io.SafeTensors;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.train.Checkpoints;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The deployable format's safety: round trips of every head and draft combination, and a damaged or
 * inconsistent file refused with one line naming the file and the tensor or field.
 */
class DeployFileTest {
    @TempDir
    Path dir;
    Path ckpt;
    InferenceModel model;

    @BeforeEach
    void checkpoint() throws IOException {
        BitSkipModel train = Micro.training(Micro.config("paper", "bitskip", 16), 1, 5);
        ckpt = dir.resolve("model.safetensors");
        Checkpoints.saveModel(train, ckpt, 0);
        model = DeployFile.fromCheckpoint(ckpt, Parallel.serial());
    }

    /**
     * Models with their own exit parameters: metadata bitskip.exit_head = adapter or lowrank and F32 tensors
     * exit_heads.<l>.* for the early exits, with every head and draft (one format version for all); a missing
     * exit tensor, or one the configuration does not announce, is refused by name.
     */
    @Test
    void exitHeadsRoundTripWithEveryHeadAndDraft() throws IOException {
        BitSkipConfig lc = Configs.override(Micro.config("reference", "bitskip", 16),
                Map.of("exit_head", "lowrank", "exit_rank", "2"), "test");
        BitSkipModel lowRank = Micro.training(lc, 1, 5);
        InferenceTest.randomExitHeads(lowRank, 9);
        InferenceModel lm = InferenceModel.of(lowRank, Parallel.serial());
        exitHeadsRoundTrip(lm, "lowrank");
        SafeTensors lst = SafeTensors.read(dir.resolve("lowrank-F32.bitskip"));
        assertArrayEquals(new int[] {lc.vocabSize(), 2}, lst.shape("exit_heads.1.up.weight"));
        assertArrayEquals(new int[] {2, lc.dModel()}, lst.shape("exit_heads.0.down.weight"));
        assertFalse(lst.names().contains("exit_heads." + (lc.nLayers() - 1) + ".up.weight"));

        BitSkipConfig c = Configs.override(Micro.config("paper", "ee-only", 16), Map.of("exit_head", "adapter"), "test");
        BitSkipModel train = Micro.training(c, 1, 5);
        InferenceTest.randomExitHeads(train, 8);
        InferenceModel adapted = InferenceModel.of(train, Parallel.serial());
        exitHeadsRoundTrip(adapted, "adapter");
        SafeTensors ast = SafeTensors.read(dir.resolve("adapter-F32.bitskip"));
        assertArrayEquals(new int[] {c.dModel(), c.dModel()}, ast.shape("exit_heads.1.proj.weight"));
        assertFalse(ast.names().contains("exit_heads." + (c.nLayers() - 1) + ".proj.weight"));
        Path file = dir.resolve("a.bitskip");
        DeployFile.write(adapted, file, DeployFile.Packing.I2);
        Path missing = dir.resolve("a-missing.bitskip");
        SafeTensors st = SafeTensors.read(file);
        SafeTensors.Builder b = SafeTensors.builder();
        for (String n : st.names()) {
            if (!n.equals("exit_heads.0.norm.bias")) {
                switch (st.dtype(n)) {
                    case F32 -> b.put(n, st.shape(n), st.floats(n));
                    case I32 -> b.putInts(n, st.shape(n), st.ints(n));
                    case U8 -> b.putBytes(n, st.shape(n), st.bytes(n));
                    default -> fail(n);
                }
            }
        }
        st.metadata().forEach(b::metadata);
        b.write(missing);
        assertTrue(refusal(missing).contains("exit_heads.0.norm.bias"), refusal(missing));
        // the adapters' tensors in a file whose configuration says shared
        Path shared = dir.resolve("a-shared.bitskip");
        Files.copy(file, shared);
        rewrite(shared, null, null, true, m -> {
            m.put(DeployFile.EXIT_HEAD_KEY, "shared");
            m.put(Checkpoints.CONFIG_KEY, Configs.toJson(Configs.override(c, Map.of("exit_head", "shared"), "t")));
            return m;
        });
        assertTrue(refusal(shared).contains("exit_heads."), refusal(shared));
    }

    private void exitHeadsRoundTrip(InferenceModel model, String design) throws IOException {
        for (LmHead.Format f : LmHead.Format.values()) {
            for (int[] draft : new int[][] {null, {0, 3, 9, 66}}) {
                InferenceModel m = model.withHead(f).withDraft(draft);
                Path file = dir.resolve(design + "-" + f + (draft == null ? "" : "-draft") + ".bitskip");
                DeployFile.write(m, file, DeployFile.Packing.TQ1);
                InferenceModel back = DeployFile.read(file, Parallel.serial());
                assertTrue(DeployFile.sameWeights(m, back), design + " " + f + " draft " + (draft != null));
                assertEquals(design, SafeTensors.read(file).metadata().get(DeployFile.EXIT_HEAD_KEY));
            }
        }
    }

    @Test
    void everyHeadAndDraftRoundTripsExactly() throws IOException {
        for (LmHead.Format f : LmHead.Format.values()) {
            for (int[] draft : new int[][] {null, {0, 3, 9, 66}}) {
                for (DeployFile.Packing p : DeployFile.Packing.values()) {
                    InferenceModel m = model.withHead(f).withDraft(draft);
                    Path file = dir.resolve("m-" + f + p + (draft == null ? "" : "-draft") + ".bitskip");
                    DeployFile.write(m, file, p, draft == null ? null : new DeployFile.DraftSource("most-frequent", "t.txt", 0.5));
                    InferenceModel back = DeployFile.read(file, Parallel.serial());
                    assertTrue(DeployFile.sameWeights(m, back), f + " " + p + " draft " + (draft != null));
                    assertEquals(f, back.head().format);
                    Map<String, String> meta = SafeTensors.read(file).metadata();
                    assertEquals("2", meta.get(DeployFile.VERSION_KEY));
                    assertEquals("shared", meta.get(DeployFile.EXIT_HEAD_KEY));
                    if (draft != null) {
                        assertEquals("{\"tokens\":4,\"selection\":\"most-frequent\",\"text\":\"t.txt\",\"coverage\":0.5}",
                                meta.get(DeployFile.DRAFT_KEY));
                    }
                }
            }
        }
    }

    @Test
    void anInt8HeadWithEightBitActivationsRoundTripsWithItsLevels() throws IOException {
        InferenceModel m = model.withHead(LmHead.Format.INT8, LmHead.activationLevels(8)).withDraft(new int[] {0, 3, 9});
        Path file = dir.resolve("a8.bitskip");
        DeployFile.write(m, file, DeployFile.Packing.I2);
        InferenceModel back = DeployFile.read(file, Parallel.serial());
        assertTrue(DeployFile.sameWeights(m, back));
        assertEquals(127, back.head().xLevels);
        assertTrue(SafeTensors.read(file).metadata().get(DeployFile.HEAD_KEY).contains("\"activation_levels\":127"));
        // the same codes as the 9-bit head of the same weights; only the activations' levels differ
        LmHead nine = model.withHead(LmHead.Format.INT8).head();
        assertArrayEquals(nine.codes(), back.head().codes());
        assertFalse(nine.sameAs(back.head()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LmHead.activationLevels(7));
        assertEquals("int8 head activation bits = 7; known: 8 (codes of ±127) and 9 (±255)", e.getMessage());
    }

    /** Writes file again with the tensor name replaced by data (its checksum updated unless keepChecksum). */
    static void rewrite(Path file, String name, Object data, boolean keepChecksum, UnaryOperator<Map<String, String>> meta)
            throws IOException {
        SafeTensors st = SafeTensors.read(file);
        SafeTensors.Builder b = SafeTensors.builder();
        for (String n : st.names()) {
            Object d = n.equals(name) ? data : switch (st.dtype(n)) {
                case F32 -> st.floats(n);
                case I32 -> st.ints(n);
                case U8 -> st.bytes(n);
                case I64 -> st.longs(n);
            };
            if (d instanceof float[] a) {
                b.put(n, st.shape(n), a);
            } else if (d instanceof int[] a) {
                b.putInts(n, st.shape(n), a);
            } else {
                b.putBytes(n, st.shape(n), (byte[]) d);
            }
        }
        Map<String, String> m = new java.util.LinkedHashMap<>(st.metadata());
        if (name != null && !keepChecksum) {
            ObjectNode sums = (ObjectNode) Configs.JSON.readTree(m.get(DeployFile.CHECKSUMS_KEY));
            sums.put(name, data instanceof float[] a ? DeployFile.crc32c(a) : data instanceof int[] a ? DeployFile.crc32c(a)
                    : DeployFile.crc32c((byte[]) data));
            m.put(DeployFile.CHECKSUMS_KEY, sums.toString());
        }
        meta.apply(m).forEach(b::metadata);
        b.write(file);
    }

    private String refusal(Path file) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeployFile.read(file, Parallel.serial()));
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        assertTrue(e.getMessage().startsWith(file.toString()), "names the file: " + e.getMessage());
        return e.getMessage();
    }

    private Path written(String name, LmHead.Format f) throws IOException {
        Path file = dir.resolve(name);
        DeployFile.write(model.withHead(f).withDraft(new int[] {1, 2, 40}), file, DeployFile.Packing.I2);
        return file;
    }

    @Test
    void aFlippedByteInAnyTensorFailsItsChecksum() throws IOException {
        for (LmHead.Format f : LmHead.Format.values()) {
            Path file = written("flip-" + f + ".bitskip", f);
            long size = Files.size(file);
            SafeTensors st = SafeTensors.read(file);
            // flip one bit near the end of the data section (the head or the draft ids) and one in the middle
            for (long at : new long[] {size - 3, size / 2, size - 1000}) {
                Path copy = dir.resolve("copy.bitskip");
                Files.copy(file, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                try (FileChannel ch = FileChannel.open(copy, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                    ByteBuffer one = ByteBuffer.allocate(1);
                    ch.read(one, at);
                    one.put(0, (byte) (one.get(0) ^ 0x10)).position(0);
                    ch.write(one, at);
                }
                String msg = refusal(copy);
                assertTrue(msg.contains("fails its checksum") && msg.contains("the file is damaged"), msg);
            }
            assertTrue(st.names().size() > 10);
        }
    }

    @Test
    void nonFiniteValuesAndNegativeScalesAreRefusedNamingTheTensor() throws IOException {
        Path file = written("nan.bitskip", LmHead.Format.F32);
        float[] w = SafeTensors.read(file).floats("layers.1.router.fc1.weight").clone();
        w[5] = Float.NaN;
        rewrite(file, "layers.1.router.fc1.weight", w, false, m -> m);
        assertEquals(file + ": tensor layers.1.router.fc1.weight holds NaN at index 5 (weights, scales and alphas must be finite)",
                refusal(file));

        file = written("inf.bitskip", LmHead.Format.F32);
        float[] head = SafeTensors.read(file).floats("lm_head.weight").clone();
        head[7] = Float.POSITIVE_INFINITY;
        rewrite(file, "lm_head.weight", head, false, m -> m);
        assertTrue(refusal(file).contains("tensor lm_head.weight holds Infinity at index 7"));

        file = written("alpha.bitskip", LmHead.Format.F32);
        rewrite(file, "layers.0.attn.k_proj.alpha", new float[] {-0.25f}, false, m -> m);
        assertEquals(file + ": tensor layers.0.attn.k_proj.alpha is negative (-0.25)", refusal(file));

        file = written("alphanan.bitskip", LmHead.Format.F32);
        rewrite(file, "layers.2.ffn.up_proj.alpha", new float[] {Float.NaN}, false, m -> m);
        assertTrue(refusal(file).contains("tensor layers.2.ffn.up_proj.alpha holds NaN"));

        file = written("scale.bitskip", LmHead.Format.INT8);
        float[] scale = SafeTensors.read(file).floats("lm_head.scale").clone();
        scale[3] = -scale[3] - 1;
        rewrite(file, "lm_head.scale", scale, false, m -> m);
        assertTrue(refusal(file).contains("tensor lm_head.scale is negative at row 3"));

        file = written("code.bitskip", LmHead.Format.INT8);
        byte[] codes = SafeTensors.read(file).bytes("lm_head.int8").clone();
        codes[40] = Byte.MIN_VALUE;
        rewrite(file, "lm_head.int8", codes, false, m -> m);
        assertTrue(refusal(file).contains("tensor lm_head.int8 holds -128 at row 1, column 8"));
    }

    @Test
    void metadataAndTensorSetMustMatchTheConfiguration() throws IOException {
        Path file = written("meta.bitskip", LmHead.Format.F32);
        String key = DeployFile.PACKING_PREFIX + "layers.1.attn.q_proj.codes";
        rewrite(file, null, null, true, m -> {
            m.put(key, "{\"scheme\":\"i2_g128\",\"rows\":\"32x\",\"cols\":32}");
            return m;
        });
        assertEquals(file + ": metadata " + key + " field rows = \"32x\" is not a non-negative integer", refusal(file));

        file = written("meta2.bitskip", LmHead.Format.F32);
        rewrite(file, null, null, true, m -> {
            m.put(key, "{\"scheme\":\"i2_g128\",\"cols\":32}");
            return m;
        });
        assertEquals(file + ": metadata " + key + " has no field rows", refusal(file));

        file = written("meta3.bitskip", LmHead.Format.F32);
        rewrite(file, null, null, true, m -> {
            m.put(DeployFile.HEAD_KEY, "[1]");
            return m;
        });
        assertEquals(file + ": metadata bitskip.head must be a JSON object, got [1]", refusal(file));

        file = written("levels.bitskip", LmHead.Format.INT8);
        rewrite(file, null, null, true, m -> {
            m.put(DeployFile.HEAD_KEY, m.get(DeployFile.HEAD_KEY).replace("\"activation_levels\":255", "\"activation_levels\":63"));
            return m;
        });
        assertEquals(file + ": metadata bitskip.head field activation_levels = 63, but this build computes the int8 head with "
                + "255 (9-bit) or 127 (8-bit) activation codes", refusal(file));

        file = written("v1.bitskip", LmHead.Format.F32);
        rewrite(file, null, null, true, m -> {
            m.put(DeployFile.VERSION_KEY, "1");
            return m;
        });
        assertTrue(refusal(file).contains("format version 1 is not supported (this build reads version 2"));

        file = written("exit.bitskip", LmHead.Format.F32);
        rewrite(file, null, null, true, m -> {
            m.put(DeployFile.EXIT_HEAD_KEY, "mixed");
            return m;
        });
        assertEquals(file + ": metadata bitskip.exit_head = mixed is not supported (this build reads shared, adapter, "
                + "lowrank)", refusal(file));

        file = written("exit2.bitskip", LmHead.Format.F32);
        rewrite(file, null, null, true, m -> {
            m.put(DeployFile.EXIT_HEAD_KEY, "adapter");
            return m;
        });
        assertEquals(file + ": metadata bitskip.exit_head = adapter does not match the configuration's exit_head = shared",
                refusal(file));

        file = written("nosum.bitskip", LmHead.Format.F32);
        rewrite(file, null, null, true, m -> {
            m.remove(DeployFile.CHECKSUMS_KEY);
            return m;
        });
        assertEquals(file + ": no metadata entry bitskip.checksums", refusal(file));

        // a tensor the metadata does not announce (draft ids without bitskip.draft)
        file = written("extra.bitskip", LmHead.Format.F32);
        rewrite(file, null, null, true, m -> {
            m.remove(DeployFile.DRAFT_KEY);
            return m;
        });
        assertEquals(file + " has a tensor draft.ids that its configuration and metadata do not announce", refusal(file));

        // a configuration with a layer less than the tensors hold
        file = written("layers.bitskip", LmHead.Format.F32);
        rewrite(file, null, null, true, m -> {
            m.put(Checkpoints.CONFIG_KEY, m.get(Checkpoints.CONFIG_KEY).replaceAll("\"n_layers\"\\s*:\\s*3", "\"n_layers\": 2"));
            return m;
        });
        assertTrue(refusal(file).contains("has a tensor layers.2."), "a dropped layer is refused");

        file = written("ids.bitskip", LmHead.Format.F32);
        rewrite(file, "draft.ids", new int[] {1, 70, 40}, false, m -> m);
        assertEquals(file + ": tensor draft.ids: head row ids must be ascending and in [0, 67), got 70 at index 1", refusal(file));
    }

    @Test
    void exportRefusesACheckpointWhoseConfigurationDoesNotDescribeItsTensors() throws IOException {
        SafeTensors st = SafeTensors.read(ckpt);
        BitSkipConfig c = Checkpoints.readConfig(ckpt);
        assertEquals(3, c.nLayers());
        for (String[] edit : new String[][] {{"\"n_layers\"\\s*:\\s*3", "\"n_layers\": 2", "has a tensor layers.2."},
                {"\"n_layers\"\\s*:\\s*3", "\"n_layers\": 4", "has no tensor layers.3."},
                {"\"ffn_dim\"\\s*:\\s*64", "\"ffn_dim\": 96", "has shape [64, 32], expected [96, 32]"}}) {
            Path bad = dir.resolve("bad.safetensors");
            SafeTensors.Builder b = SafeTensors.builder();
            for (String n : st.names()) {
                b.put(n, st.shape(n), st.floats(n));
            }
            Map<String, String> meta = new java.util.LinkedHashMap<>(st.metadata());
            String edited = meta.get(Checkpoints.CONFIG_KEY).replaceAll(edit[0], edit[1]);
            assertNotEquals(meta.get(Checkpoints.CONFIG_KEY), edited, edit[0]);
            meta.put(Checkpoints.CONFIG_KEY, edited);
            meta.forEach(b::metadata);
            b.write(bad);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> DeployFile.fromCheckpoint(bad, Parallel.serial()));
            assertTrue(e.getMessage().contains(edit[2]) && e.getMessage().contains(bad.toString()), e.getMessage());
        }
        // a NaN in the checkpoint is refused naming the tensor
        Path nan = dir.resolve("nan.safetensors");
        SafeTensors.Builder b = SafeTensors.builder();
        for (String n : st.names()) {
            float[] a = st.floats(n).clone();
            if (n.equals("layers.0.ffn.down_proj.weight")) {
                a[2] = Float.NaN;
            }
            b.put(n, st.shape(n), a);
        }
        st.metadata().forEach(b::metadata);
        b.write(nan);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeployFile.fromCheckpoint(nan, Parallel.serial()));
        assertEquals(nan + ": tensor layers.0.ffn.down_proj.weight holds NaN at index 2 (weights, scales and alphas must be finite)",
                e.getMessage());
    }

    @Test
    void theDraftVocabularyIsTheMostFrequentTokens() {
        int[] text = {5, 5, 5, 2, 2, 9, 9, 1, 7, 7, 7, 7};
        assertArrayEquals(new int[] {5, 7}, DraftHead.mostFrequent(text, 10, 2));
        assertArrayEquals(new int[] {2, 5, 7}, DraftHead.mostFrequent(text, 10, 3), "ties: the lower id first");
        assertEquals(7.0 / 12, DraftHead.coverage(text, new int[] {5, 7}), 1e-12);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DraftHead.mostFrequent(text, 10, 6));
        assertEquals("the text has 5 distinct tokens, fewer than the 6 asked for the draft vocabulary", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> DraftHead.mostFrequent(text, 10, 10));
        assertThrows(IllegalArgumentException.class, () -> DraftHead.mostFrequent(new int[] {11}, 10, 1));
    }
}
