package bitskip.model.train;

import bitskip.model.nn.BitSkipModel;
import bitskip.model.nn.Losses;

/**
 * Where the trainer gets a step's gradients, between "the step begins" and "clip and apply AdamW": an
 * implementation leaves the gradient of the mean loss of the step's global batch (every micro-batch of it) in
 * the model's parameter gradients and returns the step's losses (each a mean over the global batch, per
 * micro-batch, averaged over the micro-batches). {@link LocalGradients} computes them in this process; a
 * data-parallel one has N workers compute the shards ({@link Shards}) and sums what they computed.
 */
public interface GradientSource extends AutoCloseable {

    Losses compute(BitSkipModel model, int step);

    @Override
    default void close() {}

    /**
     * A micro-batch's loss was NaN or infinite: the message says which (the trainer stops the run with it).
     * {@link LocalGradients} throws it; a data-parallel source returns its workers' NaN in the summed losses,
     * which the trainer checks too (an exception on a worker would reach the driver as a cluster failure).
     */
    final class NonFiniteLoss extends RuntimeException {
        public NonFiniteLoss(String what) {
            super(what);
        }
    }
}
