package bitskip.model.eval;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import bitskip.model.data.Batcher;
import bitskip.model.data.Blocks;
import bitskip.model.train.BatchSource;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

/** Micro configurations and a synthetic token stream for fast evaluation tests. */
final class MicroModels {
    private MicroModels() {}

    static BitSkipConfig config(String profile, String variant, String... sets) {
        Map<String, String> o = new HashMap<>(Map.of("steps", "6", "batch", "2", "accum", "1", "eval_every", "3",
                "patience", "100", "warmup_steps", "1", "eval_batches", "0"));
        for (int i = 0; i < sets.length; i += 2) {
            o.put(sets[i], sets[i + 1]);
        }
        return Configs.override(Presets.build("micro", profile, variant), o, "test");
    }

    /** A learnable pattern with noise (as the trainer's tests use). */
    static int[] tokens(int vocab, int length, long seed) {
        Random r = new Random(seed);
        int[] t = new int[length];
        for (int i = 0; i < length; i++) {
            t[i] = r.nextInt(10) == 0 ? r.nextInt(vocab) : (i * 7 + i / 13) % vocab;
        }
        return t;
    }

    /** Training batches from one Blocks, validation from another, batched as TrainingData does. */
    static BatchSource source(Blocks train, Blocks valid, BitSkipConfig c) {
        Batcher tb = new Batcher(train, c.batch(), c.seed()), vb = new Batcher(valid, c.batch(), c.seed());
        return new BatchSource() {
            @Override
            public void trainBatch(int step, int micro, int B, int[] inputs, int[] targets) {
                tb.trainBatch((long) step * c.accum() + micro, inputs, targets);
            }

            @Override
            public int validBatches(int B) {
                return vb.evalBatchCount(0);
            }

            @Override
            public int validBatch(int i, int B, int[] inputs, int[] targets) {
                Batcher.Batch b = vb.evalBatch(i);
                System.arraycopy(b.inputs(), 0, inputs, 0, b.rows() * b.ctx());
                System.arraycopy(b.targets(), 0, targets, 0, b.rows() * b.ctx());
                return b.rows();
            }
        };
    }
}
