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
}
