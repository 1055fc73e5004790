package bitskip.model.train;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.JavaBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Losses;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data-parallel arithmetic without a cluster: the shards of N workers (dropout and layer skipping on, keyed by
 * the global sample index) sum to the gradient one process computes on the whole batch, up to the order of the
 * float sums, and a trainer fed by them follows the single-process run.
 */
class ShardsTest {
    /** micro bitskip under the paper profile: early exit with p_max 0.7 skipping, dropout, quantization and routing losses. */
    static BitSkipConfig config(String steps) {
        return Configs.override(Presets.build("micro", "paper", "bitskip"), Map.of("batch", "4", "accum", "2",
                "dropout", "0.1", "steps", steps, "eval_every", "4", "patience", "100", "warmup_steps", "2"), "test");
    }

    @Test
    void shardsSumToTheWholeBatchGradient() {
        BitSkipConfig c = config("1");
        SyntheticData data = new SyntheticData(c.vocabSize(), c.ctx(), 3000, 3);
        BitSkipModel one = new BitSkipModel(c, new JavaBackend(), c.batch());
        one.initialize(c.seed());
        int step = 5; // a step whose masks skip layers for some samples and not others
        Losses whole = new LocalGradients(c, data).compute(one, step);
        float[] wholeGrads = ShardWorker.Params.gather(one, true);
        float[] weights = ShardWorker.Params.gather(one, false);
        for (int n : new int[] {2, 3, 4}) { // 3: shards of 1, 1 and 2 samples
            DataParallelGradients dp = new DataParallelGradients(c, data, new LoopbackExchange(c, n));
            BitSkipModel driver = new BitSkipModel(c, new JavaBackend(), c.batch());
            ShardWorker.Params.scatter(driver, weights, false);
            Losses split = dp.compute(driver, step);
            float[] g = ShardWorker.Params.gather(driver, true);
            double max = 0, diff = 0;
            for (int i = 0; i < g.length; i++) {
                max = Math.max(max, Math.abs(wholeGrads[i]));
                diff = Math.max(diff, Math.abs(wholeGrads[i] - g[i]));
            }
            String what = n + " workers";
            assertTrue(diff <= 1e-5 * max, String.format(Locale.ROOT, "%s: gradients differ by %.3e (largest %.3e)", what, diff, max));
            assertClose(what + " task", whole.task(), split.task());
            assertClose(what + " ee", whole.ee(), split.ee());
            assertClose(what + " quant", whole.quant(), split.quant());
            assertClose(what + " route", whole.route(), split.route());
            assertClose(what + " total", whole.total(), split.total());
        }
    }

    @Test
    void aShardKeyedByItsFirstSampleSeesTheWholeBatchsMasks() {
        BitSkipConfig c = config("1");
        int[][] all = Randomness.skipMask(c, 7, 3, 1, c.batch());
        int[][] tail = Randomness.skipMask(c, 7, 3, 1, c.batch(), 1, 3);
        for (int l = 0; l < c.nLayers(); l++) {
            assertArrayEquals(java.util.Arrays.copyOfRange(all[l], 1, 4), tail[l], "layer " + l);
        }
        assertThrows(IllegalArgumentException.class, () -> Randomness.skipMask(c, 7, 3, 1, 4, 3, 2));
    }

    @Test
    void aTrainerFedByWorkersFollowsTheSingleProcessRun(@TempDir Path tmp) throws Exception {
        BitSkipConfig c = config("8");
        SyntheticData data = new SyntheticData(c.vocabSize(), c.ctx(), 4000, 2);
        PrintStream quiet = new PrintStream(new ByteArrayOutputStream());
        Trainer one = new Trainer(c, new JavaBackend(), data, tmp.resolve("one"), null);
        one.prepare(false, quiet);
        one.run();
        try (DataParallelGradients dp = new DataParallelGradients(c, data, new LoopbackExchange(c, 2))) {
            Trainer two = new Trainer(c, new JavaBackend(), data, tmp.resolve("two"), null, dp);
            two.prepare(false, quiet);
            two.run();
        }
        List<Double> a = losses(tmp.resolve("one")), b = losses(tmp.resolve("two"));
        assertEquals(8, a.size());
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            double rel = Math.abs(a.get(i) - b.get(i)) / Math.abs(a.get(i));
            assertTrue(rel <= 1e-4, String.format(Locale.ROOT, "step %d: loss %.9f in one process, %.9f in two workers", i + 1, a.get(i), b.get(i)));
        }
        assertTrue(Files.isRegularFile(tmp.resolve("two").resolve("last").resolve("optimizer.safetensors")), "checkpoints as today");
    }

    @Test
    void refusesWhatShardsCannotCompute() {
        BitSkipConfig ref = Configs.override(Presets.build("micro", "reference", "bitskip"), Map.of("batch", "4"), "test");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Shards.check(ref, 2));
        assertTrue(e.getMessage().contains("route_loss = batch_mean"), e.getMessage());
        Shards.check(Configs.override(ref, Map.of("route_loss", "per_token"), "test"), 2);
        e = assertThrows(IllegalArgumentException.class, () -> Shards.check(config("1"), 5));
        assertTrue(e.getMessage().contains("batch of at least 5"), e.getMessage());
    }

    static List<Double> losses(Path dir) throws Exception {
        return Files.readAllLines(dir.resolve("metrics.jsonl")).stream().filter(l -> l.contains("\"train\""))
                .map(l -> {
                    try {
                        return Configs.JSON.readTree(l).get("loss").asDouble();
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                }).toList();
    }

    private static void assertClose(String what, double a, double b) {
        assertTrue(Math.abs(a - b) <= 1e-6 * Math.abs(a), String.format(Locale.ROOT, "%s: whole batch %.12g, shards %.12g", what, a, b));
    }
}
