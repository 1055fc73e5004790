package bitskip.model.eval;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.JavaBackend;
import bitskip.kernels.Quantize;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.data.Blocks;
import bitskip.model.io.SafeTensors;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;
import bitskip.model.train.Checkpoints;
import bitskip.model.train.Trainer;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EvalTest {
    static final PrintStream QUIET = new PrintStream(new ByteArrayOutputStream());

    /** Trains a micro model for a few steps; returns the run folder. */
    static Path train(Path dir, BitSkipConfig c, Blocks train, Blocks valid) throws Exception {
        Trainer t = new Trainer(c, new JavaBackend(), MicroModels.source(train, valid, c), dir, null);
        t.prepare(false, QUIET);
        t.run();
        return dir;
    }

    @Test
    void packedDeployedModelComputesExactlyWhatTheTrainedModelComputes() {
        for (String variant : new String[] {"baseline", "bitskip"}) {
            BitSkipConfig c = MicroModels.config("paper", variant);
            int B = 2, N = B * c.ctx();
            BitSkipModel m = new BitSkipModel(c, new JavaBackend(), B);
            m.initialize(5);
            BitSkipModel d = new BitSkipModel(Deployment.PACKED.config(c), new JavaBackend(), B);
            assertFalse(d.config.ternary());
            List<Param> src = m.params().all(), dst = d.params().all();
            for (int i = 0; i < src.size(); i++) {
                float[] w = new float[src.get(i).size];
                m.backend().download(src.get(i).value, w);
                if (src.get(i).kind == Param.Kind.QUANTIZED) {
                    w = Deployment.PACKED.transform(w);
                }
                d.backend().upload(dst.get(i).value, w);
            }
            int[] tok = MicroModels.tokens(c.vocabSize(), N + 1, 3);
            int[] in = java.util.Arrays.copyOfRange(tok, 0, N), tg = java.util.Arrays.copyOfRange(tok, 1, N + 1);
            double[] a = m.evaluate(in, tg, B, true), b = d.evaluate(in, tg, B, true);
            assertArrayEquals(a, b, variant + ": summed CE of final output and exits");
            for (int l = 0; l < c.nLayers(); l++) {
                assertArrayEquals(m.exitLogits(l, true, N), d.exitLogits(l, true, N), variant + ": logits of exit " + l);
            }
        }
    }

    @Test
    void requantizationKeepsTheCodesAndShrinksAlphaByTheShareOfNonZeros() {
        float[] w = new float[1000];
        java.util.Random r = new java.util.Random(1);
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (r.nextGaussian() * 0.02);
        }
        byte[] codes = new byte[w.length], codes2 = new byte[w.length];
        float alpha = Quantize.ternaryForward(null, codes, w, w.length);
        float[] wHat = Deployment.REQUANTIZED.transform(w);
        float alpha2 = Quantize.ternaryForward(null, codes2, wHat, w.length);
        assertArrayEquals(codes, codes2, "codes survive the second ternarization");
        WeightStats.Matrix s = WeightStats.ofMatrix("w", 10, 100, w);
        assertEquals(alpha * (1 - s.zeroFrac()), alpha2, 1e-6 * alpha);
        assertTrue(Deployment.REQUANTIZED.config(MicroModels.config("reference", "bitskip")).ternary());
        assertEquals(Deployment.REQUANTIZED, Deployment.parse("auto", "reference"));
        assertEquals(Deployment.PACKED, Deployment.parse("auto", "paper"));
    }

    @Test
    void weightStatisticsCountCodesAsTheQuantizerDoes() {
        // alpha = mean|w| = (0 + 0.1 + 1 + 1 + 0.9 + 1) / 6 = 0.6667; threshold 0.3333
        float[] w = {0f, 0.1f, 1f, -1f, 0.9f, -1f};
        WeightStats.Matrix m = WeightStats.ofMatrix("m", 2, 3, w);
        assertEquals(4.0f / 6, m.alpha(), 1e-6);
        assertEquals(2.0 / 6, m.zeroFrac(), 1e-12);
        assertEquals(2.0 / 6, m.plusFrac(), 1e-12);
        assertEquals(2.0 / 6, m.minusFrac(), 1e-12);
        WeightStats.Matrix sparse = WeightStats.ofMatrix("s", 1, 4, new float[] {0f, 0f, 0f, 1f});
        assertEquals(0.75, sparse.zeroFrac(), 1e-12);
        WeightStats.Summary s = WeightStats.summarize(List.of(m, sparse));
        assertEquals(1, s.hiSparse());
        assertEquals((2.0 / 6 + 0.75) / 2, s.meanZeroFrac(), 1e-12);
    }

    @Test
    void latentPerplexityEqualsTrainingsValidationAndConventionsDifferOnlyWithAShortLastBatch(@TempDir Path tmp)
            throws Exception {
        BitSkipConfig c = MicroModels.config("paper", "bitskip");
        int[] tok = MicroModels.tokens(c.vocabSize(), 2000, 1);
        Blocks train = new Blocks(java.util.Arrays.copyOfRange(tok, 0, 1600), c.ctx(), "train");
        // 5 validation blocks with batch 2: the last batch has one sequence
        Blocks valid = new Blocks(java.util.Arrays.copyOfRange(tok, 1600, 1600 + 5 * c.ctx() + 1), c.ctx(), "valid");
        Path run = train(tmp.resolve("run"), c, train, valid);
        double best = Double.NaN;
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode n = Configs.JSON.readTree(line);
            if (n.path("type").asText().equals("eval")) {
                best = Double.isNaN(best) ? n.get("val_ppl").asDouble() : Math.min(best, n.get("val_ppl").asDouble());
            }
        }
        EvalText text = new EvalText("valid", valid, 5 * c.ctx() + 1);
        EvalReport r = Evaluator.evaluate(run, text, new JavaBackend(),
                new Evaluator.Options(0, 0, true, Deployment.PACKED), s -> {});
        assertEquals(best, r.latent().ppl(), 1e-9 * best, "eval of the best checkpoint = training's best val_ppl");
        assertEquals(r.latent().ppl(), r.deployed().ppl(), 1e-4 * best, "packed = latent up to rounding");
        assertEquals(3, r.latent().batches());
        assertNotEquals(r.latent().ppl(), r.latent().pplBatchMean(), "a short last batch weighs more per token");
        // the last exit is the final output
        assertEquals(r.latent().loss(), r.latent().exitLoss()[c.nLayers() - 1], 1e-12);

        Blocks four = new Blocks(java.util.Arrays.copyOfRange(tok, 1600, 1600 + 4 * c.ctx() + 1), c.ctx(), "valid4");
        EvalReport r4 = Evaluator.evaluate(run, new EvalText("v4", four, 4 * c.ctx() + 1), new JavaBackend(),
                new Evaluator.Options(2, 0, false, null), s -> {});
        assertEquals(r4.latent().loss(), r4.latent().lossBatchMean(), 1e-12, "full batches: the conventions agree");

        EvalReport rq = Evaluator.evaluate(run, text, new JavaBackend(),
                new Evaluator.Options(0, 0, false, Deployment.REQUANTIZED), s -> {});
        assertNotEquals(r.latent().ppl(), rq.deployed().ppl(), 1e-6, "double ternarization changes the model");

        String md = r.toMarkdown();
        for (String must : new String[] {"token-weighted", "mean of batch means", "Table 3", "Table 4", "Table 5", "packed"}) {
            assertTrue(md.contains(must), must + " in\n" + md);
        }
        JsonNode j = Configs.JSON.readTree(Configs.JSON.writeValueAsString(r.toJson()));
        assertEquals(c.nLayers(), j.at("/latent/exits").size());
        assertEquals(6 * c.nLayers(), j.at("/weights/per_matrix").size());
        assertTrue(r.toCsv().lines().anyMatch(l -> l.startsWith("ppl,deployed_packed,final,token_weighted,")));
    }

    @Test
    void aCheckpointWhoseConfigurationDoesNotMatchItsTensorsIsRefusedNamingTheFile(@TempDir Path tmp) throws Exception {
        BitSkipConfig c = MicroModels.config("paper", "baseline");
        BitSkipModel m = new BitSkipModel(c, new JavaBackend(), 1);
        m.initialize(1);
        Path good = tmp.resolve("good.safetensors");
        Checkpoints.saveModel(m, good, 3);
        // same tensors, but the metadata claims four layers
        SafeTensors st = SafeTensors.read(good);
        SafeTensors.Builder b = SafeTensors.builder();
        for (String name : st.names()) {
            b.put(name, st.shape(name), st.floats(name));
        }
        b.metadata(Checkpoints.CONFIG_KEY, Configs.toJson(Configs.override(c, Map.of("n_layers", "4"), "t")));
        Path bad = tmp.resolve("bad.safetensors");
        b.write(bad);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Evaluator.load(bad, new JavaBackend(), 1, null));
        assertTrue(e.getMessage().contains(bad.toString()) && e.getMessage().contains("cannot be loaded")
                && e.getMessage().contains("layers.3"), e.getMessage());
        assertEquals(3, Evaluator.load(good, new JavaBackend(), 1, null).step());
        Exception missing = assertThrows(java.nio.file.NoSuchFileException.class,
                () -> Evaluator.resolveCheckpoint(tmp.resolve("nope")));
        assertTrue(missing.getMessage().contains("nope"));
    }

    @Test
    void badTextFilesAreRefusedNamingTheFileAndTheProblem(@TempDir Path tmp) throws Exception {
        System.setProperty("bitskip.cache", tmp.resolve("cache").toString());
        Path empty = Files.writeString(tmp.resolve("empty.txt"), "");
        Path shortText = Files.writeString(tmp.resolve("short.txt"), "Hello world.\n");
        Path latin1 = Files.write(tmp.resolve("latin1.txt"), "caf\u00e9 au lait\n".getBytes("ISO-8859-1"));
        int ctx = 64, vocab = 50257;
        Exception e1 = assertThrows(Exception.class, () -> EvalText.file(empty, ctx, vocab, s -> {}));
        assertTrue(e1.getMessage().contains("empty.txt") && e1.getMessage().contains("empty"), e1.getMessage());
        Exception e2 = assertThrows(IllegalArgumentException.class, () -> EvalText.file(shortText, ctx, vocab, s -> {}));
        assertTrue(e2.getMessage().contains("short.txt") && e2.getMessage().contains("too few for one block"), e2.getMessage());
        Exception e3 = assertThrows(Exception.class, () -> EvalText.file(latin1, ctx, vocab, s -> {}));
        assertTrue(e3.getMessage().contains("latin1.txt") && e3.getMessage().contains("not valid UTF-8"), e3.getMessage());
        Exception e4 = assertThrows(Exception.class, () -> EvalText.file(tmp.resolve("missing.txt"), ctx, vocab, s -> {}));
        assertTrue(e4.getMessage().contains("missing.txt"), e4.getMessage());
        Exception e5 = assertThrows(IllegalArgumentException.class, () -> EvalText.file(shortText, 2, 67, s -> {}));
        assertTrue(e5.getMessage().contains("vocab_size = 67"), e5.getMessage());
        EvalText ok = EvalText.file(shortText, 2, vocab, s -> {});
        assertTrue(ok.blocks().count() >= 1);
    }
}
