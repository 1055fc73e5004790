package bitskip.model.nn;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.engine.Backend;
import bitskip.engine.JavaBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.io.SafeTensors;
import bitskip.model.train.Optimizer;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The whole model against the independent PyTorch implementation ({@code pytorch/bitskip_torch.py}), on
 * the golden files {@code pytorch/make_golden.py} writes: for each variant and profile, the exit logits,
 * p_exit, every loss term and every parameter gradient of one step, then the losses of five AdamW steps and
 * the weights after them. Prints the largest difference per tensor, the llm.c way. The exit-head designs
 * (issue 17) have files of their own, named after their variant, profile and design.
 */
class GoldenTest {
    static Stream<Arguments> goldens() {
        List<Arguments> a = new ArrayList<>();
        for (String profile : Presets.PROFILES) {
            for (String variant : Presets.VARIANTS) {
                a.add(Arguments.of(variant + "-" + profile, variant, profile));
            }
        }
        // the exit-head designs, on a smaller shape (d 16, FFN 32): make_golden.py's EXTRA
        a.add(Arguments.of("bitskip-paper-adapter-gradstop", "bitskip", "paper"));
        a.add(Arguments.of("ee-only-reference-adapter", "ee-only", "reference"));
        a.add(Arguments.of("ee-only-paper-lowrank-gradstop", "ee-only", "paper"));
        a.add(Arguments.of("bitskip-reference-lowrank", "bitskip", "reference"));
        return a.stream();
    }

    /** Tolerances, relative to the largest magnitude of each tensor (float32 on both sides, other summation
     *  order; measured worst cases: logits 1.4e-6, losses 7.6e-6 after five steps, gradients 7e-6, weights
     *  after five AdamW steps 2.9e-5, where Adam magnifies rounding noise in tiny gradients). */
    static final double LOGITS_TOL = 2e-5, LOSS_TOL = 2e-6, GRAD_TOL = 1e-4, PARAM_TOL = 2e-4;

    @ParameterizedTest(name = "{0}")
    @MethodSource("goldens")
    void modelMatchesPyTorch(String name, String variant, String profile) throws Exception {
        Path file = Path.of("src", "test", "resources", "golden", name + ".safetensors");
        SafeTensors g = SafeTensors.read(file);
        BitSkipConfig c = configOf(g, variant, profile);
        Backend be = new JavaBackend();
        int[] tok = g.ints("tokens");
        int[] tshape = g.shape("tokens");
        int B = tshape[0], T = tshape[1] - 1, L = c.nLayers(), V = c.vocabSize(), N = B * T;
        assertEquals(c.ctx(), T, "golden T vs ctx");
        int[] inputs = new int[N], targets = new int[N];
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                inputs[b * T + t] = tok[b * (T + 1) + t];
                targets[b * T + t] = tok[b * (T + 1) + t + 1];
            }
        }
        BitSkipModel m = new BitSkipModel(c, be, B);
        for (Param p : m.params().all()) {
            be.upload(p.value, g.floats("param." + p.name, p.shape));
        }
        Report r = new Report(name);

        // one forward pass with step 0's skip mask: logits of every exit, p_exit, the loss terms
        int[][] skip0 = skip(g, 0, B, L);
        Losses l = m.forward(inputs, targets, B, skip0, false, 0L);
        for (int layer = 0; layer < L; layer++) {
            r.compare("exit_logits." + layer, g.floats("exit_logits." + layer), m.exitLogits(layer, c.eeFinalNorm(), N), LOGITS_TOL);
        }
        r.compare("logits", g.floats("logits"), m.exitLogits(L - 1, true, N), LOGITS_TOL);
        float[] p = new float[L * N];
        be.download(m.exitProbabilities(), p);
        r.compare("p_exit", g.floats("p_exit"), p, LOGITS_TOL);
        r.scalar("loss.task", g.floats("loss.task")[0], l.task(), LOSS_TOL);
        r.scalar("loss.ee", g.floats("loss.ee")[0], l.ee(), LOSS_TOL);
        r.scalar("loss.route", g.floats("loss.route")[0], l.route(), LOSS_TOL);
        r.scalar("loss.quant", g.floats("loss.quant")[0], l.quant(), LOSS_TOL);
        r.scalar("loss.total", g.floats("loss.total")[0], l.total(), LOSS_TOL);

        // every parameter gradient of loss.total
        m.zeroGrads();
        m.trainStep(inputs, targets, B, skip0, 0L, 1.0f);
        for (Param q : m.params().all()) {
            float[] grad = new float[q.size];
            be.download(q.grad, grad);
            r.compare("grad." + q.name, g.floats("grad." + q.name), grad, GRAD_TOL);
        }

        // five AdamW steps on the same batch, step s with its own skip mask
        float[] trainLoss = g.floats("train.loss");
        for (int s = 0; s < trainLoss.length; s++) {
            m.zeroGrads();
            Losses ls = m.trainStep(inputs, targets, B, skip(g, s, B, L), 0L, 1.0f);
            r.scalar("train.loss[" + s + "]", trainLoss[s], ls.total(), 10 * LOSS_TOL);
            Optimizer.step(m, c.lr(), s + 1);
        }
        for (Param q : m.params().all()) {
            float[] v = new float[q.size];
            be.download(q.value, v);
            r.compare("final." + q.name, g.floats("final." + q.name), v, PARAM_TOL);
        }
        r.finish();
    }

    /** The golden file's configuration over the micro preset of its profile and variant. */
    static BitSkipConfig configOf(SafeTensors g, String variant, String profile) throws Exception {
        JsonNode json = Configs.JSON.readTree(g.metadata().get("bitskip.config"));
        Map<String, String> o = new LinkedHashMap<>();
        List<String> known = Configs.fieldNames();
        for (Iterator<Map.Entry<String, JsonNode>> it = json.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (known.contains(e.getKey())) {
                o.put(e.getKey(), e.getValue().asText());
            }
        }
        o.put("dropout", "0");
        return Configs.override(Presets.build("micro", profile, variant), o, g.source());
    }

    /** step{s}.skip_mask [B, L] as skip[l][b]. */
    static int[][] skip(SafeTensors g, int s, int B, int L) {
        int[] m = g.ints("step" + s + ".skip_mask", B, L);
        int[][] skip = new int[L][B];
        for (int b = 0; b < B; b++) {
            for (int l = 0; l < L; l++) {
                skip[l][b] = m[b * L + l];
            }
        }
        return skip;
    }

    /** Collects the largest difference of every tensor, prints them all, then fails on any beyond tolerance. */
    static final class Report {
        final String name;
        final List<String> failures = new ArrayList<>();
        final StringBuilder table = new StringBuilder();

        Report(String name) {
            this.name = name;
        }

        void compare(String tensor, float[] expected, float[] actual, double tol) {
            assertEquals(expected.length, actual.length, tensor + " length");
            double maxAbs = 0, maxDiff = 0;
            int at = 0;
            for (int i = 0; i < expected.length; i++) {
                maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
                double d = Math.abs(expected[i] - actual[i]);
                if (d > maxDiff || Double.isNaN(actual[i])) {
                    maxDiff = Double.isNaN(actual[i]) ? Double.POSITIVE_INFINITY : d;
                    at = i;
                }
            }
            double rel = maxDiff / Math.max(maxAbs, 1e-12);
            line(tensor, maxDiff, rel, at, expected[at], actual[at], rel > tol && maxDiff > 1e-7);
        }

        void scalar(String what, double expected, double actual, double tol) {
            double d = Math.abs(expected - actual);
            double rel = d / Math.max(Math.abs(expected), 1e-12);
            line(what, d, rel, 0, expected, actual, rel > tol && d > 1e-7);
        }

        private void line(String tensor, double diff, double rel, int at, double e, double a, boolean bad) {
            String s = String.format(Locale.ROOT, "%-45s max|diff| %.3e (rel %.2e) at %d: torch %.7g java %.7g%s",
                    tensor, diff, rel, at, e, a, bad ? "  <-- FAIL" : "");
            table.append(s).append('\n');
            if (bad) {
                failures.add(s);
            }
        }

        void finish() {
            System.out.println("== golden " + name + "\n" + table);
            if (!failures.isEmpty()) {
                fail(name + ": " + failures.size() + " tensors differ from PyTorch:\n" + String.join("\n", failures));
            }
        }
    }
}
