package bitskip.engine.tornado;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.abort;

import bitskip.engine.Backend;
import bitskip.engine.Backends;
import bitskip.engine.JavaBackend;
import bitskip.engine.Requirements;
import bitskip.engine.Tensor;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Losses;
import bitskip.model.nn.Param;
import bitskip.model.train.Optimizer;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Whole training steps (forward, backward, AdamW) of the micro model on the TornadoVM backend against the
 * Java reference, for every variant and profile, with dropout, layer skipping and an ignored target: the
 * losses within 1e-5 relative, every gradient and every updated weight within 1e-4 of the tensor's largest
 * magnitude (the tolerances of the OpenCL backend's step test; only the whole-tensor reductions differ
 * from the reference's order, so the observed differences are far below them).
 */
class TornadoTrainStepTest {
    /** The largest differences seen (printed: what the tolerances leave room for). */
    private static double worstLoss, worstTensor;

    @Test
    void twoTrainingStepsMatchTheReferenceForEveryVariantAndProfile() {
        Requirements.skipOrFail("tornado", Backends.tornadoUnavailableReason()).ifPresent(why -> abort(why));
        for (String profile : Presets.PROFILES) {
            for (String variant : Presets.VARIANTS) {
                BitSkipConfig c = Configs.override(Presets.build("micro", profile, variant), Map.of("dropout", "0.1"), "test");
                try (Backend dev = new TornadoBackend()) {
                    check(c, dev, profile + "/" + variant);
                }
            }
        }
        System.out.printf(Locale.ROOT, "tornado train step: largest loss difference %.2e relative, largest gradient or"
                + " weight difference %.2e of the tensor's largest magnitude%n", worstLoss, worstTensor);
    }

    private static void check(BitSkipConfig c, Backend dev, String what) {
        int B = 2, N = B * c.ctx(), L = c.nLayers();
        BitSkipModel ref = new BitSkipModel(c, new JavaBackend(), B), got = new BitSkipModel(c, dev, B);
        ref.initialize(11);
        got.initialize(11);
        Random r = new Random(4);
        int[] x = new int[N], y = new int[N];
        for (int i = 0; i < N; i++) {
            x[i] = r.nextInt(c.vocabSize());
            y[i] = i == 3 ? -1 : r.nextInt(c.vocabSize());
        }
        int[][] skip = new int[L][B];
        skip[L - 1][1] = 1;
        for (int step = 1; step <= 2; step++) {
            ref.zeroGrads();
            got.zeroGrads();
            Losses a = ref.trainStep(x, y, B, skip, 99L + step, 1.0f);
            Losses b = got.trainStep(x, y, B, skip, 99L + step, 1.0f);
            rel(a.task(), b.task(), what + " step " + step + " task loss");
            rel(a.quant(), b.quant(), what + " step " + step + " quant loss");
            rel(a.route(), b.route(), what + " step " + step + " route loss");
            rel(a.total(), b.total(), what + " step " + step + " total loss");
            for (Param p : ref.params().all()) {
                compare(ref.backend(), p.grad, dev, got.params().get(p.name).grad, what + " step " + step + " grad " + p.name);
            }
            rel(Optimizer.step(ref, 1e-3f, step), Optimizer.step(got, 1e-3f, step), what + " step " + step + " grad norm");
            for (Param p : ref.params().all()) {
                compare(ref.backend(), p.value, dev, got.params().get(p.name).value, what + " step " + step + " " + p.name);
            }
        }
    }

    private static void rel(double want, double got, String what) {
        worstLoss = Math.max(worstLoss, Math.abs(want - got) / Math.max(1e-6, Math.abs(want)));
        if (!(Math.abs(want - got) <= 1e-5 * Math.max(1e-6, Math.abs(want)))) {
            fail(String.format(Locale.ROOT, "%s: reference %.12g, tornado %.12g", what, want, got));
        }
    }

    private static void compare(Backend ra, Tensor ta, Backend rb, Tensor tb, String what) {
        float[] a = new float[ta.size()], b = new float[tb.size()];
        ra.download(ta, a);
        rb.download(tb, b);
        double max = 0, worst = 0;
        int at = 0;
        for (float v : a) {
            max = Math.max(max, Math.abs(v));
        }
        for (int i = 0; i < a.length; i++) {
            double diff = Math.abs((double) a[i] - b[i]);
            if (!(diff <= worst)) {
                worst = diff;
                at = i;
            }
        }
        worstTensor = Math.max(worstTensor, max == 0 ? worst : worst / max);
        if (!(worst <= 1e-4 * max + 1e-7)) {
            fail(what + ": worst [" + at + "] reference " + a[at] + " tornado " + b[at] + " (max |reference| " + max + ")");
        }
    }
}
