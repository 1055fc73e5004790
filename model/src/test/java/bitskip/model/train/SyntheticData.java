package bitskip.model.train;

import java.util.Random;

/**
 * A token stream the tests make themselves: a repeating pattern with noise, so a small model can learn
 * something, cut into blocks like the real data (ctx+1 tokens every ctx).
 */
final class SyntheticData implements BatchSource {
    private final int[] tokens;
    private final int ctx;
    private final int validBlocks;

    SyntheticData(int vocab, int ctx, int length, long seed) {
        this.ctx = ctx;
        Random r = new Random(seed);
        tokens = new int[length];
        for (int i = 0; i < length; i++) {
            tokens[i] = r.nextInt(10) == 0 ? r.nextInt(vocab) : (i * 7 + i / 13) % vocab;
        }
        validBlocks = 4;
    }

    private int blocks() {
        return (tokens.length - 1) / ctx;
    }

    private void copy(int block, int row, int[] inputs, int[] targets) {
        for (int t = 0; t < ctx; t++) {
            inputs[row * ctx + t] = tokens[block * ctx + t];
            targets[row * ctx + t] = tokens[block * ctx + t + 1];
        }
    }

    @Override
    public void trainBatch(int step, int micro, int B, int[] inputs, int[] targets) {
        int trainBlocks = blocks() - validBlocks;
        for (int b = 0; b < B; b++) {
            copy(validBlocks + Math.floorMod(step * 31 + micro * 17 + b * 5, trainBlocks), b, inputs, targets);
        }
    }

    @Override
    public int validBatches(int B) {
        return (validBlocks + B - 1) / B;
    }

    @Override
    public int validBatch(int i, int B, int[] inputs, int[] targets) {
        int rows = Math.min(B, validBlocks - i * B);
        for (int b = 0; b < rows; b++) {
            copy(i * B + b, b, inputs, targets);
        }
        return rows;
    }
}
