package bitskip.model.nn;

import static org.junit.jupiter.api.Assertions.fail;

import bitskip.engine.Backend;
import bitskip.engine.JavaBackend;
import bitskip.engine.Tensor;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.train.Optimizer;
import java.util.Locale;
import java.util.Random;

/**
 * Two whole training steps (forward, backward, AdamW) of one configuration on a device backend against the
 * Java reference, with layer skipping on one sample and one ignored target: the four losses within 1e-5
 * relative, every gradient and every updated weight within 1e-4 of the tensor's largest magnitude (+1e-7),
 * the gradient norm within 1e-5 relative. Used by the OpenCL backend's step test and, from this module's test
 * jar, by the TornadoVM backend's.
 */
public final class TrainStepCheck {
    private TrainStepCheck() {}

    /** The largest differences seen: a loss's relative one, and a tensor element's over its largest |value|. */
    public record Worst(double loss, double tensor) {
        Worst max(Worst o) {
            return new Worst(Math.max(loss, o.loss), Math.max(tensor, o.tensor));
        }
    }

    public static Worst check(BitSkipConfig c, Backend dev, String what) {
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
        Worst worst = new Worst(0, 0);
        for (int step = 1; step <= 2; step++) {
            String at = what + " step " + step;
            ref.zeroGrads();
            got.zeroGrads();
            Losses a = ref.trainStep(x, y, B, skip, 99L + step, 1.0f);
            Losses b = got.trainStep(x, y, B, skip, 99L + step, 1.0f);
            worst = worst.max(rel(a.task(), b.task(), at + " task loss")).max(rel(a.quant(), b.quant(), at + " quant loss"))
                    .max(rel(a.route(), b.route(), at + " route loss")).max(rel(a.total(), b.total(), at + " total loss"));
            for (Param p : ref.params().all()) {
                worst = worst.max(compare(ref.backend(), p.grad, dev, got.params().get(p.name).grad, at + " grad " + p.name));
            }
            rel(Optimizer.step(ref, 1e-3f, step), Optimizer.step(got, 1e-3f, step), at + " grad norm");
            for (Param p : ref.params().all()) {
                worst = worst.max(compare(ref.backend(), p.value, dev, got.params().get(p.name).value, at + " " + p.name));
            }
        }
        return worst;
    }

    private static Worst rel(double want, double got, String what) {
        double d = Math.abs(want - got) / Math.max(1e-6, Math.abs(want));
        if (!(d <= 1e-5)) {
            fail(String.format(Locale.ROOT, "%s: reference %.12g, device %.12g", what, want, got));
        }
        return new Worst(d, 0);
    }

    private static Worst compare(Backend ra, Tensor ta, Backend rb, Tensor tb, String what) {
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
        if (!(worst <= 1e-4 * max + 1e-7)) {
            fail(what + ": worst [" + at + "] reference " + a[at] + " device " + b[at] + " (max |reference| " + max + ")");
        }
        return new Worst(0, max == 0 ? worst : worst / max);
    }
}
