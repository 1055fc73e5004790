package bitskip.model.config;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigTest {

    @Test
    void jsonRoundTripKeepsEveryFieldInSnakeCase() {
        for (String profile : Presets.PROFILES) {
            for (String variant : Presets.VARIANTS) {
                BitSkipConfig c = Presets.build("tiny", profile, variant);
                String json = Configs.toJson(c);
                assertTrue(json.contains("\"d_model\" : 128"), json);
                assertTrue(json.contains("\"lambda_ee\""), json);
                assertTrue(json.contains("\"p_max\""), json);
                assertTrue(json.contains("\"n_kv_heads\" : 2"), json);
                assertFalse(json.contains("head_size"), "derived values are not serialized");
                assertEquals(c, Configs.fromJson(json, "test"));
            }
        }
    }

    @Test
    void exitHeadsAreConfiguredStrictlyAndDefaultToTheSharedHead() {
        for (String profile : Presets.PROFILES) {
            for (String variant : Presets.VARIANTS) {
                BitSkipConfig c = Presets.build("micro", profile, variant);
                assertEquals("shared", c.exitHead());
                assertFalse(c.exitHeadGradStop());
            }
        }
        BitSkipConfig ee = Presets.build("micro", "paper", "ee-only");
        BitSkipConfig a = Configs.override(ee, Map.of("exit_head", "adapter", "exit_head_grad_stop", "true"), "test");
        assertEquals(a, Configs.fromJson(Configs.toJson(a), "test"));
        assertTrue(a.exitAdapter(0) && a.exitAdapter(1) && !a.exitAdapter(2), "the last layer exits plainly");
        assertTrue(a.exitGradStop(1) && !a.exitGradStop(2));
        // a configuration written before the keys existed (checkpoints, run folders, deployable files) reads as shared
        String old = Configs.toJson(ee).replaceAll("\\s*\"exit_head\" : \"shared\",", "")
                .replaceAll("\\s*\"exit_head_grad_stop\" : false,", "").replaceAll("\\s*\"exit_rank\" : 0,", "");
        assertFalse(old.contains("exit_head"), old);
        assertEquals(ee, Configs.fromJson(old, "old"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Configs.override(ee, Map.of("exit_head", "mixed"), "test"));
        assertTrue(e.getMessage().contains("exit_head = 'mixed'") && e.getMessage().contains("shared, adapter, lowrank"),
                e.getMessage());
        BitSkipConfig lr = Configs.override(ee, Map.of("exit_head", "lowrank", "exit_rank", "4"), "test");
        assertTrue(lr.exitLowRank(1) && !lr.exitLowRank(2) && !lr.exitAdapter(0));
        assertEquals(lr, Configs.fromJson(Configs.toJson(lr), "test"));
        e = assertThrows(IllegalArgumentException.class, () -> Configs.override(ee, Map.of("exit_head", "lowrank"), "test"));
        assertTrue(e.getMessage().contains("exit_rank = 0") && e.getMessage().contains("[1, 32]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Configs.override(ee, Map.of("exit_head", "adapter", "exit_rank", "2"), "test"));
        assertTrue(e.getMessage().contains("exit_rank = 2") && e.getMessage().contains("unless exit_head = lowrank"),
                e.getMessage());
        BitSkipConfig base = Presets.build("micro", "paper", "baseline");
        e = assertThrows(IllegalArgumentException.class, () -> Configs.override(base, Map.of("exit_head", "adapter"), "test"));
        assertTrue(e.getMessage().contains("exit_head") && e.getMessage().contains("lambda_ee"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Configs.override(base, Map.of("exit_head_grad_stop", "true"), "test"));
        assertTrue(e.getMessage().contains("exit_head_grad_stop") && e.getMessage().contains("lambda_ee"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Configs.override(ee, Map.of("exit_head_grad_stop", "yes"), "test"));
        assertTrue(e.getMessage().contains("exit_head_grad_stop"), e.getMessage());
    }

    @Test
    void variantsAndProfilesFollowTheSpec() {
        BitSkipConfig b = Presets.build("paper-85m", "paper", "bitskip");
        assertEquals(512, b.dModel());
        assertEquals(12, b.nLayers());
        assertEquals(0.3f, b.lambdaEe());
        assertEquals(4, b.projectionBits());
        assertEquals(0.0, b.skipProbability(11));
        assertEquals(0.7 * (5.0 / 12) * (5.0 / 12), b.skipProbability(5), 1e-7);
        BitSkipConfig r = Presets.build("paper-85m", "reference", "baseline");
        assertEquals(0.0f, r.lambdaR());
        assertEquals(0.0f, r.lambdaQ());
        assertEquals(0.2f, Presets.build("paper-85m", "reference", "ee-only").lambdaR());
        assertEquals(0.2f, Presets.build("paper-85m", "paper", "baseline").lambdaR());
        assertEquals(16, r.batch());
        // Both profiles use the elementwise mean of the quantization loss (MODEL.md section 3): the literal
        // sum of Eq. 8 collapses the weights and stays available only as the quant_loss=l2 switch.
        assertEquals("mse", b.quantLoss());
        assertEquals("mse", r.quantLoss());
        assertEquals("l2", Configs.override(b, Map.of("quant_loss", "l2"), "test").quantLoss());
        assertTrue(r.learnedPositions());
        BitSkipConfig rh = Presets.build("paper-85m", "reference", "bitskip");
        assertEquals(0.7 * (5.0 / 11) * (5.0 / 11), rh.skipProbability(5), 1e-7);
        assertEquals(8, rh.projectionBits());
        // normalized exit weights sum to one; inverse favours early layers, linear late ones
        double s = 0;
        for (int l = 0; l < 12; l++) {
            s += b.exitWeight(l);
        }
        assertEquals(1.0, s, 1e-12);
        assertTrue(b.exitWeight(0) > b.exitWeight(11));
        assertTrue(rh.exitWeight(0) < rh.exitWeight(11));
    }

    @Test
    void overridesParseByFieldTypeAndInvalidValuesNameTheField() {
        BitSkipConfig base = Presets.build("tiny", "paper", "bitskip");
        BitSkipConfig c = Configs.override(base, Map.of("lr", "3e-4", "n_layers", "2", "hadamard", "false",
                "ee-targets", "unshifted"), "--set");
        assertEquals(3e-4f, c.lr());
        assertEquals(2, c.nLayers());
        assertFalse(c.hadamard());
        assertEquals("unshifted", c.eeTargets());

        assertMessage(() -> Configs.override(base, Map.of("n_heads", "3"), "--set"), "n_heads");
        assertMessage(() -> Configs.override(base, Map.of("n_kv_heads", "3"), "--set"), "n_kv_heads");
        assertMessage(() -> Configs.override(base, Map.of("dropout", "-0.1"), "--set"), "dropout");
        assertMessage(() -> Configs.override(base, Map.of("p_max", "1"), "--set"), "p_max");
        assertMessage(() -> Configs.override(base, Map.of("lambda_ee", "-1"), "--set"), "lambda_ee");
        assertMessage(() -> Configs.override(base, Map.of("schedule", "linear"), "--set"), "schedule");
        assertMessage(() -> Configs.override(base, Map.of("no_such_field", "1"), "--set"), "no_such_field");
        assertMessage(() -> Configs.override(base, Map.of("steps", "many"), "--set"), "steps");
        assertMessage(() -> Presets.build("huge", "paper", "bitskip"), "preset");
        assertMessage(() -> Presets.build("tiny", "paper", "h+ee"), "variant");
    }

    @Test
    void configFileOverridesFieldsAndRefusesUnknownOnes(@TempDir Path dir) throws Exception {
        BitSkipConfig base = Presets.build("tiny", "paper", "bitskip");
        Path f = dir.resolve("c.json");
        Files.writeString(f, "{\"lr\": 0.001, \"batch\": 8}");
        BitSkipConfig c = Configs.overrideFromFile(base, f);
        assertEquals(0.001f, c.lr());
        assertEquals(8, c.batch());
        Files.writeString(f, "{\"lrr\": 0.001}");
        assertMessage(() -> Configs.overrideFromFile(base, f), "lrr");
        Files.writeString(f, "{\"batch\": \"eight\"}");
        assertMessage(() -> Configs.overrideFromFile(base, f), "batch");
    }

    @Test
    void integersMustBeIntegersAndKeysUniqueInConfigFilesAndCheckpointMetadata(@TempDir Path dir) throws Exception {
        BitSkipConfig base = Presets.build("tiny", "paper", "bitskip");
        Path f = dir.resolve("c.json");
        Files.writeString(f, "{\"n_layers\": 2.5}");
        assertMessage(() -> Configs.overrideFromFile(base, f), "n_layers");
        Files.writeString(f, "{\"steps\": 3000000000}");
        assertMessage(() -> Configs.overrideFromFile(base, f), "steps");
        Files.writeString(f, "{\"hadamard\": 1}");
        assertMessage(() -> Configs.overrideFromFile(base, f), "hadamard");
        Files.writeString(f, "{\"n_layers\": 2,\n \"n_layers\": 3}");
        assertMessage(() -> Configs.overrideFromFile(base, f), "n_layers");
        assertMessage(() -> Configs.overrideFromFile(base, f), "twice");
        assertMessage(() -> Configs.override(base, Map.of("n_layers", "2.5"), "--set"), "n_layers");
        assertMessage(() -> Configs.override(base, Map.of("batch", "99999999999"), "--set"), "batch");

        String json = Configs.toJson(base);
        assertMessage(() -> Configs.fromJson(json.replace("\"n_layers\" : 4", "\"n_layers\" : 4.5"), "meta"), "n_layers");
        assertMessage(() -> Configs.fromJson(json.replace("\"n_layers\" : 4", "\"n_layers\" : \"4\""), "meta"), "n_layers");
        assertMessage(() -> Configs.fromJson(json.replace("{", "{\"n_layers\" : 4,"), "meta"), "n_layers");
    }

    @Test
    void numbersMustBeFinite(@TempDir Path dir) throws Exception {
        BitSkipConfig base = Presets.build("tiny", "paper", "bitskip");
        for (String v : new String[] {"Infinity", "-Infinity", "NaN", "1e39"}) {
            assertMessage(() -> Configs.override(base, Map.of("lr", v), "--set"), "lr");
        }
        assertMessage(() -> Configs.override(base, Map.of("weight_decay", "Infinity"), "--set"), "weight_decay");
        assertMessage(() -> Configs.override(base, Map.of("min_delta_ppl", "Infinity"), "--set"), "min_delta_ppl");
        Path f = dir.resolve("c.json");
        Files.writeString(f, "{\"lr\": 1e300}");
        assertMessage(() -> Configs.overrideFromFile(base, f), "lr");
    }

    @Test
    void sizeProductsAreCheckedForOverflowAndAgainstWhatABackendTensorAddresses() {
        BitSkipConfig base = Presets.build("tiny", "paper", "bitskip");
        // batch 128 x 4 heads x ctx^2: 2^33 (ctx 16384), int overflow to negative (46341) and to 0 (65536)
        for (String ctx : new String[] {"16384", "46341", "65536", "2147483647"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Configs.override(base, Map.of("ctx", ctx), "--set"));
            assertTrue(e.getMessage().contains("ctx = " + ctx) && e.getMessage().contains("2,147,483,647"), e.getMessage());
        }
        assertMessage(() -> Configs.override(base, Map.of("vocab_size", "20000000"), "--set"), "vocab_size");
        assertMessage(() -> Configs.override(base, Map.of("ffn_dim", "1073741824", "batch", "1"), "--set"), "ffn_dim");
        // the largest tensor of tiny: the LM head's chunk of logits (512 x 50,257), ahead of the attention probabilities
        // and FFN activations (128 x 4 x 128^2 = 128 x 128 x 512 = 8,388,608)
        assertEquals(512L * 50_257, base.largestTensor(base.batch()).elements());
        assertTrue(base.largestTensor(1 << 20).elements() > BitSkipConfig.MAX_TENSOR_ELEMENTS);
        assertMessage(() -> base.requireAddressable(1 << 20), "batch");
        // a device with a smaller largest buffer (OpenCL's max alloc) is checked against its own limit
        IllegalArgumentException small = assertThrows(IllegalArgumentException.class,
                () -> base.requireAddressable(base.batch(), 1 << 20, "floats of the largest buffer OpenCL device 0:0 allocates"));
        assertTrue(small.getMessage().contains("more than the 1,048,576 floats of the largest buffer OpenCL device 0:0 allocates"),
                small.getMessage());
        base.requireAddressable(base.batch(), 1L << 40, "a huge device");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable e, String field) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(field), "message should name " + field + ": " + ex.getMessage());
    }

    @Test
    void precisionIsFp32UnlessAskedAndReadsAsFp32FromOlderFiles() {
        BitSkipConfig c = Presets.build("micro", "paper", "bitskip");
        assertEquals("fp32", c.precision());
        BitSkipConfig b = Configs.override(c, Map.of("precision", "bf16"), "test");
        assertEquals("bf16", b.precision());
        assertEquals(b, Configs.fromJson(Configs.toJson(b), "test"));
        String old = Configs.toJson(c).replaceAll("\\s*\"precision\" : \"fp32\",", "");
        assertFalse(old.contains("precision"), old);
        assertEquals(c, Configs.fromJson(old, "old"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Configs.override(c, Map.of("precision", "fp16"), "test"));
        assertTrue(e.getMessage().contains("precision = 'fp16'") && e.getMessage().contains("fp32, bf16"), e.getMessage());
    }
}
