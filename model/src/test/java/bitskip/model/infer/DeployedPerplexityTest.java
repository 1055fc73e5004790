package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.data.Blocks;
import bitskip.model.eval.Perplexity;
import bitskip.model.nn.BitSkipModel;
import org.junit.jupiter.api.Test;

/** eval --model: the inference path's perplexity equals the checkpoint's, final output and every exit. */
class DeployedPerplexityTest {
    @Test
    void deployedFloatHeadPerplexityEqualsTheCheckpointsAtEveryExit() {
        BitSkipConfig c = Micro.config("paper", "bitskip", 8);
        int B = 3;
        BitSkipModel train = Micro.training(c, B, 21);
        Blocks blocks = new Blocks(Micro.tokens(8 * 7 + 1, c.vocabSize(), 4), c.ctx(), "random tokens");
        Perplexity want = Perplexity.measure(train, blocks, B, 0, true);
        InferenceModel m = InferenceModel.of(train, new Parallel(2));
        Perplexity got = DeployedPerplexity.measure(m, blocks, B, 0, true, null);
        assertEquals(want.tokens(), got.tokens());
        assertEquals(want.batches(), got.batches());
        // the deployed logits equal the training forward's within float rounding (InferenceTest)
        assertEquals(want.loss(), got.loss(), 1e-4 * want.loss());
        assertEquals(want.lossBatchMean(), got.lossBatchMean(), 1e-4 * want.loss());
        for (int l = 0; l < c.nLayers(); l++) {
            assertEquals(want.exitLoss()[l], got.exitLoss()[l], 1e-4 * want.loss(), "exit " + (l + 1));
        }
        assertEquals(got.loss(), got.exitLoss()[c.nLayers() - 1], 0.0, "the last exit is the final output");
        Perplexity noExits = DeployedPerplexity.measure(m, blocks, B, 2, false, null);
        assertNull(noExits.exitLoss());
        assertEquals(2, noExits.batches());

        for (int bits : new int[] {9, 8}) {
            Perplexity int8 = DeployedPerplexity.measure(m.withHead(LmHead.Format.INT8, LmHead.activationLevels(bits)), blocks, B, 0,
                    false, null);
            assertTrue(Math.abs(int8.loss() - got.loss()) < 0.02 * got.loss() && int8.loss() != got.loss(),
                    "the int8 head with " + bits + "-bit activations is close, not equal: " + int8.loss() + " vs " + got.loss());
        }
    }

    @Test
    void crossEntropyRowIsLogSumExpMinusTheTarget() {
        float[] x = new float[3 + 37];
        for (int i = 0; i < 37; i++) {
            x[3 + i] = (float) Math.sin(i) * 4;
        }
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int i = 0; i < 37; i++) {
            max = Math.max(max, x[3 + i]);
        }
        for (int i = 0; i < 37; i++) {
            sum += Math.exp(x[3 + i] - max);
        }
        assertEquals(max + Math.log(sum) - x[3 + 11], DeployedPerplexity.crossEntropy(x, 3, 37, 11), 1e-6);
    }
}
