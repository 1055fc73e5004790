package bitskip.model.train;

/** Where the trainer gets its token blocks: B sequences of T inputs with their next-token targets. */
public interface BatchSource {
    /**
     * Fills inputs and targets (B·T each) for one training micro-batch; must be a pure function of
     * (step, micro) so a resumed run sees the same data.
     */
    void trainBatch(int step, int micro, int B, int[] inputs, int[] targets);

    /** The number of validation batches of B sequences (the last may be partial). */
    int validBatches(int B);

    /** Fills validation batch i; returns the number of sequences it holds (B, or fewer for the last). */
    int validBatch(int i, int B, int[] inputs, int[] targets);
}
