package bitskip.model.nn;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import bitskip.engine.Backend;
import bitskip.engine.JavaBackend;
import bitskip.engine.opencl.OpenCLBackend;
import bitskip.engine.opencl.OpenCLDevices;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Presets;
import bitskip.model.train.Optimizer;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * One whole training step (forward, backward, optimizer) of the micro model on every OpenCL device
 * present, against the Java reference: every variant and profile, with layer skipping and dropout on.
 * Losses agree to 1e-5 relative, every gradient and every updated parameter to 1e-4 of the tensor's
 * largest element (the devices' whole-tensor reductions run in another order than the reference's).
 */
class OpenCLTrainStepTest {
    @Test
    void trainingStepMatchesTheReferenceOnEveryOpenCLDevice() {
        assumeFalse(OpenCLDevices.list().isEmpty(), "no OpenCL platform: " + OpenCLDevices.unavailableReason());
        for (OpenCLDevices.Device d : OpenCLDevices.list()) {
            for (String profile : Presets.PROFILES) {
                for (String variant : Presets.VARIANTS) {
                    try (Backend dev = new OpenCLBackend(d)) {
                        check(Presets.build("micro", profile, variant), dev, d.id() + " " + profile + "/" + variant);
                    }
                }
            }
        }
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
            rel(a.task(), b.task(), what + " task loss");
            rel(a.quant(), b.quant(), what + " quant loss");
            rel(a.route(), b.route(), what + " route loss");
            rel(a.total(), b.total(), what + " total loss");
            for (Param p : ref.params().all()) {
                compare(ref.backend(), p.grad, dev, got.params().get(p.name).grad, what + " step " + step + " grad " + p.name);
            }
            double na = Optimizer.step(ref, 1e-3f, step), nb = Optimizer.step(got, 1e-3f, step);
            rel(na, nb, what + " grad norm");
            for (Param p : ref.params().all()) {
                compare(ref.backend(), p.value, dev, got.params().get(p.name).value, what + " step " + step + " " + p.name);
            }
        }
    }

    private static void rel(double want, double got, String what) {
        assertEquals(want, got, 1e-5 * Math.max(1e-6, Math.abs(want)), what);
    }

    private static void compare(Backend ra, bitskip.engine.Tensor ta, Backend rb, bitskip.engine.Tensor tb, String what) {
        float[] a = new float[ta.size()], b = new float[tb.size()];
        ra.download(ta, a);
        rb.download(tb, b);
        double max = 0, worst = 0;
        int at = -1;
        for (int i = 0; i < a.length; i++) {
            max = Math.max(max, Math.abs(a[i]));
        }
        for (int i = 0; i < a.length; i++) {
            double diff = Math.abs((double) a[i] - b[i]);
            if (!(diff <= worst)) {
                worst = diff;
                at = i;
            }
        }
        if (!(worst <= 1e-4 * max + 1e-7)) {
            fail(what + ": worst [" + at + "] want " + a[at] + " got " + b[at] + " (max |want| " + max + ")");
        }
    }
}
