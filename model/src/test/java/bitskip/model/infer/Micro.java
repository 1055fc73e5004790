package bitskip.model.infer;

import bitskip.engine.JavaBackend;
import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.nn.BitSkipModel;
import java.util.Map;
import java.util.Random;

/** Small models for the inference tests. */
final class Micro {
    private Micro() {}

    /** The micro preset with a longer context (generation needs room), any profile and variant. */
    static BitSkipConfig config(String profile, String variant, int ctx) {
        return Configs.override(Presets.build("micro", profile, variant),
                Map.of("ctx", Integer.toString(ctx), "dropout", "0"), "test");
    }

    static BitSkipModel training(BitSkipConfig c, int batch, long seed) {
        BitSkipModel m = new BitSkipModel(c, new JavaBackend(), batch);
        m.initialize(seed);
        return m;
    }

    static int[] tokens(int n, int vocab, long seed) {
        Random r = new Random(seed);
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = r.nextInt(vocab);
        }
        return t;
    }

    /** A repeating pattern with a little noise, so a few training steps teach the model something. */
    static final class Pattern implements bitskip.model.train.BatchSource {
        private final int vocab, ctx;

        Pattern(int vocab, int ctx) {
            this.vocab = vocab;
            this.ctx = ctx;
        }

        static int token(int i, int vocab) {
            return (i * 7 + i / 5) % Math.min(vocab, 23);
        }

        private void fill(int start, int row, int[] inputs, int[] targets) {
            for (int t = 0; t < ctx; t++) {
                inputs[row * ctx + t] = token(start + t, vocab);
                targets[row * ctx + t] = token(start + t + 1, vocab);
            }
        }

        @Override
        public void trainBatch(int step, int micro, int B, int[] inputs, int[] targets) {
            for (int b = 0; b < B; b++) {
                fill(step * 13 + b * 29 + micro * 3, b, inputs, targets);
            }
        }

        @Override
        public int validBatches(int B) {
            return 1;
        }

        @Override
        public int validBatch(int i, int B, int[] inputs, int[] targets) {
            fill(1000, 0, inputs, targets);
            return 1;
        }
    }

    /** A micro model trained for a few steps on {@link Pattern}. */
    static BitSkipModel trained(BitSkipConfig base, int steps, java.nio.file.Path dir) throws java.io.IOException {
        BitSkipConfig c = Configs.override(base, Map.of("steps", Integer.toString(steps), "batch", "4", "accum", "1",
                "eval_every", "100000", "lr", "0.01", "warmup_steps", "0"), "test");
        var t = new bitskip.model.train.Trainer(c, new JavaBackend(), new Pattern(c.vocabSize(), c.ctx()), dir, null);
        t.prepare(false, new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
        t.run();
        return t.model();
    }
}
