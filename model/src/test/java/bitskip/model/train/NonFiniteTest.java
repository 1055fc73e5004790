package bitskip.model.train;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.JavaBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.io.SafeTensors;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Param;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A NaN or an infinity stops training at once, naming the step and the first tensor in model order that
 * went bad; the newest checkpoint stays the last good one; no checkpoint is written or loaded with one.
 */
class NonFiniteTest {
    static final PrintStream QUIET = new PrintStream(new ByteArrayOutputStream());

    static BitSkipConfig config() {
        return Configs.override(Presets.build("micro", "paper", "bitskip"), Map.of(
                "steps", "8", "batch", "2", "accum", "2", "eval_every", "2", "patience", "100", "warmup_steps", "2"), "test");
    }

    /** Sets one value of a tensor of the model (after the given 1-based step, or at its gradients) to x. */
    static void poison(BitSkipModel m, String param, boolean gradient, float x) {
        Param p = m.params().get(param);
        float[] a = new float[p.size];
        m.backend().download(gradient ? p.grad : p.value, a);
        a[a.length / 2] = x;
        m.backend().upload(gradient ? p.grad : p.value, a);
    }

    /** A prepared fresh run of {@link #config} whose parameter gets the value x after the given (1-based) step. */
    static Trainer poisonedAfter(Path dir, int after, String param, float x) throws Exception {
        BitSkipConfig c = config();
        SyntheticData data = new SyntheticData(c.vocabSize(), c.ctx(), 4000, 1);
        Trainer[] self = new Trainer[1];
        self[0] = new Trainer(c, new JavaBackend(), data, dir, new Trainer.Listener() {
            @Override
            public void step(int step, bitskip.model.nn.Losses l, float lr, double tps) {
                if (step == after) {
                    poison(self[0].model(), param, false, x);
                }
            }
        });
        self[0].prepare(false, QUIET);
        return self[0];
    }

    @Test
    void aNonFiniteLossStopsTheRunNamingTheStepAndTheFirstBadTensorAndKeepsTheLastGoodCheckpoint(@TempDir Path tmp) throws Exception {
        BitSkipConfig c = config();
        Path dir = tmp.resolve("run");
        // layer 2's query weights go bad after step 5: step 6's loss is NaN
        Trainer t = poisonedAfter(dir, 5, "layers.2.attn.q_proj.weight", Float.NaN);
        NonFiniteException e = assertThrows(NonFiniteException.class, t::run);
        assertTrue(e.getMessage().startsWith("step 6: the training loss of micro-batch 1 of 2 is NaN"), e.getMessage());
        assertTrue(e.getMessage().contains("the first non-finite tensor in model order is layers.2.attn.q_proj.weight (1 of "),
                e.getMessage());
        assertTrue(e.getMessage().contains("the newest checkpoint is " + dir.resolve("last") + " (step 4)"), e.getMessage());

        // the checkpoint of step 4 is the newest and loads; the metrics end with the stop
        assertEquals("4", SafeTensors.read(dir.resolve("last").resolve("model.safetensors")).metadata().get(Checkpoints.STEP_KEY));
        Checkpoints.loadModel(new BitSkipModel(c, new JavaBackend(), 1), dir.resolve("last").resolve("model.safetensors"));
        String lastLine = Files.readAllLines(dir.resolve("metrics.jsonl")).stream().reduce((a, b) -> b).orElseThrow();
        assertTrue(lastLine.contains("\"type\":\"stopped\"") && lastLine.contains("\"step\":6"), lastLine);
        assertFalse(Files.readString(dir.resolve("metrics.jsonl")).contains("\"step\":6,\"loss\""), "no train line for the bad step");

        // resuming continues from step 4
        Trainer r = new Trainer(c, new JavaBackend(), new SyntheticData(c.vocabSize(), c.ctx(), 4000, 1), dir, null);
        r.prepare(true, QUIET);
        assertEquals(4, r.state().step());
    }

    @Test
    void aNonFiniteGradientStopsTheRunBeforeTheOptimizerTouchesTheWeights(@TempDir Path tmp) throws Exception {
        BitSkipConfig c = config();
        SyntheticData data = new SyntheticData(c.vocabSize(), c.ctx(), 4000, 1);
        Path dir = tmp.resolve("run");
        float[][] before = new float[1][];
        Trainer t = new Trainer(c, new JavaBackend(), data, dir, new Trainer.Listener() {
            @Override
            public void gradients(int step, BitSkipModel m) {
                if (step == 3) {
                    Param p = m.params().get("final_norm.weight");
                    before[0] = new float[p.size];
                    m.backend().download(p.value, before[0]);
                    poison(m, "layers.1.ffn.up_proj.weight", true, Float.POSITIVE_INFINITY);
                }
            }
        });
        t.prepare(false, QUIET);
        NonFiniteException e = assertThrows(NonFiniteException.class, t::run);
        assertTrue(e.getMessage().startsWith("step 3: the gradient norm is Infinity"), e.getMessage());
        // every value and layer output is finite; of the gradients, backward order (from the head down)
        assertTrue(e.getMessage().contains("is the gradient of layers.1.ffn.up_proj.weight (1 of"), e.getMessage());
        assertTrue(e.getMessage().contains("(step 2)"), e.getMessage());
        float[] after = new float[before[0].length];
        t.model().backend().download(t.model().params().get("final_norm.weight").value, after);
        assertArrayEquals(before[0], after, "the optimizer did not run");
    }

    @Test
    void aNonFiniteValidationLossStopsTheRunBeforeItsCheckpoints(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("run");
        Trainer t = poisonedAfter(dir, 4, "lm_head.weight", Float.NEGATIVE_INFINITY);
        NonFiniteException e = assertThrows(NonFiniteException.class, t::run);
        assertTrue(e.getMessage().startsWith("step 4: the validation loss is NaN"), e.getMessage());
        assertTrue(e.getMessage().contains("lm_head.weight"), e.getMessage());
        assertEquals("2", SafeTensors.read(dir.resolve("last").resolve("model.safetensors")).metadata().get(Checkpoints.STEP_KEY));
        assertEquals("2", SafeTensors.read(dir.resolve("checkpoint").resolve("model.safetensors")).metadata().get(Checkpoints.STEP_KEY));
    }

    @Test
    void checkpointsAreNeverWrittenNorLoadedWithANonFiniteValue(@TempDir Path tmp) throws Exception {
        BitSkipConfig c = config();
        BitSkipModel m = new BitSkipModel(c, new JavaBackend(), 1);
        m.initialize(1);
        Path good = tmp.resolve("good.safetensors");
        Checkpoints.saveModel(m, good, 1);
        Checkpoints.saveOptimizer(m, tmp.resolve("opt.safetensors"), 1);

        poison(m, "layers.0.ffn.down_proj.weight", false, Float.NaN);
        Path bad = tmp.resolve("bad.safetensors");
        NonFiniteException w = assertThrows(NonFiniteException.class, () -> Checkpoints.saveModel(m, bad, 2));
        assertTrue(w.getMessage().contains("layers.0.ffn.down_proj.weight"), w.getMessage());
        assertFalse(Files.exists(bad), "nothing written");

        // a NaN, an infinity, in the weights or the optimizer's moments: refused naming the tensor
        for (float x : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            for (String name : new String[] {"layers.1.attn.v_proj.weight", "final_norm.bias"}) {
                Path f = rewrite(good, tmp.resolve("x.safetensors"), name, x);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> Checkpoints.loadModel(new BitSkipModel(c, new JavaBackend(), 1), f));
                assertTrue(e.getMessage().contains(name) && e.getMessage().contains("not finite"), e.getMessage());
            }
        }
        Path opt = rewrite(tmp.resolve("opt.safetensors"), tmp.resolve("o.safetensors"), "lm_head.weight.adam_v", Float.NaN);
        BitSkipModel n = new BitSkipModel(c, new JavaBackend(), 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Checkpoints.loadOptimizer(n, opt));
        assertTrue(e.getMessage().contains("lm_head.weight.adam_v"), e.getMessage());
    }

    /** A copy of a safetensors file with one value of one tensor replaced by x. */
    static Path rewrite(Path from, Path to, String tensor, float x) throws Exception {
        SafeTensors st = SafeTensors.read(from);
        SafeTensors.Builder b = SafeTensors.builder();
        for (String name : st.names()) {
            float[] a = st.floats(name);
            if (name.equals(tensor)) {
                a[a.length - 1] = x;
            }
            b.put(name, st.shape(name), a);
        }
        st.metadata().forEach(b::metadata);
        b.write(to);
        return to;
    }
}
