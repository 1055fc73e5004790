package bitskip.model.nn;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.Backend;
import bitskip.engine.JavaBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Presets;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Layer skipping (spec Eq. 5): a skipped sample passes through the block unchanged and trains nothing there. */
class LayerSkipTest {
    @Test
    void skippedSamplePassesThroughUnchangedAndGivesTheBlockNoGradient() {
        // without the quantization loss, whose gradient reaches every quantized weight whatever is skipped
        BitSkipConfig c = bitskip.model.config.Configs.override(Presets.build("micro", "paper", "bitskip"),
                java.util.Map.of("lambda_q", "0"), "test");
        Backend be = new JavaBackend();
        int B = 2, T = c.ctx(), C = c.dModel(), L = c.nLayers(), N = B * T;
        BitSkipModel m = new BitSkipModel(c, be, B);
        m.initialize(5);
        int[] inputs = new int[N], targets = new int[N];
        Random r = new Random(2);
        for (int i = 0; i < N; i++) {
            inputs[i] = r.nextInt(c.vocabSize());
            targets[i] = r.nextInt(c.vocabSize());
        }
        int[][] skip = new int[L][B];
        skip[1][0] = 1; // sample 0 skips layer 1
        m.forward(inputs, targets, B, skip, false, 0L);
        float[] h0 = new float[N * C], h1 = new float[N * C];
        be.download(m.hidden(0), h0);
        be.download(m.hidden(1), h1);
        for (int i = 0; i < T * C; i++) {
            assertEquals(h0[i], h1[i], "sample 0 passes layer 1 unchanged");
        }
        boolean changed = false;
        for (int i = T * C; i < N * C; i++) {
            changed |= h0[i] != h1[i];
        }
        assertTrue(changed, "sample 1 goes through layer 1");

        // both samples skip layer 1: its projections get no gradient, layer 0's do
        skip[1][1] = 1;
        m.zeroGrads();
        m.trainStep(inputs, targets, B, skip, 0L, 1.0f);
        assertEquals(0.0, sumAbs(be, m.params().get("layers.1.attn.q_proj.weight")));
        assertEquals(0.0, sumAbs(be, m.params().get("layers.1.ffn.down_proj.weight")));
        assertTrue(sumAbs(be, m.params().get("layers.0.attn.q_proj.weight")) > 0);
    }

    @Test
    void lossTermsAreFiniteAndTheTotalIsTheirWeightedSum() {
        for (String profile : Presets.PROFILES) {
            for (String variant : Presets.VARIANTS) {
                BitSkipConfig c = Presets.build("micro", profile, variant);
                BitSkipModel m = new BitSkipModel(c, new JavaBackend(), 2);
                m.initialize(1);
                int N = 2 * c.ctx();
                int[] x = new int[N], y = new int[N];
                for (int i = 0; i < N; i++) {
                    x[i] = (i * 5) % c.vocabSize();
                    y[i] = (i * 3 + 1) % c.vocabSize();
                }
                Losses l = m.forward(x, y, 2, null, false, 0L);
                double expected = l.task() + (c.lambdaEe() > 0 ? c.lambdaEe() * l.ee() : 0) + c.lambdaQ() * l.quant()
                        + c.lambdaR() * l.route();
                assertEquals(expected, l.total(), 1e-9, variant + "/" + profile);
                // near-uniform logits at initialization: the loss is close to log V
                assertEquals(Math.log(c.vocabSize()), l.task(), 0.5, variant + "/" + profile);
                for (double e : l.exits()) {
                    assertTrue(Double.isFinite(e));
                }
            }
        }
    }

    private static double sumAbs(Backend be, Param p) {
        float[] g = new float[p.size];
        be.download(p.grad, g);
        double s = 0;
        for (float v : g) {
            s += Math.abs(v);
        }
        return s;
    }
}
