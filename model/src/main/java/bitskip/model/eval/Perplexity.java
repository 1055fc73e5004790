package bitskip.model.eval;

import bitskip.model.data.Batcher;
import bitskip.model.data.Blocks;
import bitskip.model.nn.BitSkipModel;

/**
 * Perplexity of a model on blocks of text, in both conventions, for the final output and every exit.
 *
 * <ul>
 *   <li>{@code token_weighted}: exp of the mean cross-entropy over every predicted token (what training
 *       logs as {@code val_ppl});</li>
 *   <li>{@code mean_of_batch_means}: exp of the mean over batches of each batch's mean cross-entropy (the
 *       authors' convention: a short last batch weighs as much as a full one).</li>
 * </ul>
 * Batches are the blocks in order, B at a time, as training validates ({@link Batcher#evalBatch}); the
 * first {@code batches} of them when that is positive. Exits: the final LayerNorm and the shared head on
 * each layer's output (Table 5), no dropout, no skipping.
 *
 * @param loss       final-output mean cross-entropy, token-weighted
 * @param lossBatchMean final-output mean cross-entropy, mean of batch means
 * @param exitLoss   per exit layer, token-weighted (null when exits were not computed)
 * @param exitLossBatchMean per exit layer, mean of batch means (null when exits were not computed)
 */
public record Perplexity(long tokens, int batches, int batchSize, double loss, double lossBatchMean,
                         double[] exitLoss, double[] exitLossBatchMean) {

    public static final String TOKEN_WEIGHTED = "token_weighted";
    public static final String MEAN_OF_BATCH_MEANS = "mean_of_batch_means";

    public double ppl() {
        return Math.exp(loss);
    }

    public double pplBatchMean() {
        return Math.exp(lossBatchMean);
    }

    public double exitPpl(int l) {
        return Math.exp(exitLoss[l]);
    }

    public double exitPplBatchMean(int l) {
        return Math.exp(exitLossBatchMean[l]);
    }

    /** Measures model on blocks, B sequences at a time (B at most the model's planned batch). */
    public static Perplexity measure(BitSkipModel model, Blocks blocks, int B, int batches, boolean exits) {
        if (B > model.maxBatch()) {
            throw new IllegalArgumentException("evaluation batch " + B + " exceeds the model's planned batch " + model.maxBatch());
        }
        if (blocks.ctx() != model.config.ctx()) {
            throw new IllegalArgumentException("blocks of " + blocks.ctx() + " tokens for a model of context " + model.config.ctx());
        }
        int L = model.config.nLayers(), T = blocks.ctx();
        Batcher batcher = new Batcher(blocks, B, 0L);
        int n = batcher.evalBatchCount(batches);
        int[] inputs = new int[B * T], targets = new int[B * T];
        double sum = 0, batchMeans = 0;
        double[] exitSum = new double[L], exitBatchMeans = new double[L];
        long tokens = 0;
        for (int i = 0; i < n; i++) {
            Batcher.Batch b = batcher.evalBatch(i);
            System.arraycopy(b.inputs(), 0, inputs, 0, b.rows() * T);
            System.arraycopy(b.targets(), 0, targets, 0, b.rows() * T);
            double[] s = model.evaluate(inputs, targets, b.rows(), exits);
            long bt = (long) b.rows() * T;
            sum += s[0];
            batchMeans += s[0] / bt;
            if (exits) {
                for (int l = 0; l < L; l++) {
                    exitSum[l] += s[1 + l];
                    exitBatchMeans[l] += s[1 + l] / bt;
                }
            }
            tokens += bt;
        }
        return ofSums(tokens, n, B, sum, batchMeans, exits ? exitSum : null, exits ? exitBatchMeans : null);
    }

    /**
     * From the sums over batches: of the cross-entropy (sum), of each batch's mean (batchMeans), and the same per
     * exit (null when exits were not computed), over tokens predicted tokens in n batches of B.
     */
    public static Perplexity ofSums(long tokens, int n, int B, double sum, double batchMeans, double[] exitSum,
                                    double[] exitBatchMeans) {
        double[] exitLoss = null, exitLossBm = null;
        if (exitSum != null) {
            exitLoss = new double[exitSum.length];
            exitLossBm = new double[exitSum.length];
            for (int l = 0; l < exitSum.length; l++) {
                exitLoss[l] = exitSum[l] / tokens;
                exitLossBm[l] = exitBatchMeans[l] / n;
            }
        }
        return new Perplexity(tokens, n, B, sum / tokens, batchMeans / n, exitLoss, exitLossBm);
    }
}
