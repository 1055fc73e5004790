package bitskip.model.train;

import java.io.Serializable;
import java.util.List;

/**
 * The collective behind data-parallel training ({@link DataParallelGradients}): it gives worker w the step's
 * weights and shard w, has every worker compute its {@link ShardWorker#compute shard gradients}, and returns
 * their elementwise sum. The spark module's implementation broadcasts the weights and sums with
 * {@code treeAggregate}; another collective (an MPI all-reduce, NCCL on CUDA machines) implements this
 * interface, and neither the trainer nor the shard arithmetic changes.
 *
 * <p>The sum must be taken in an order that does not depend on which worker finished first, so that the same
 * seed gives the same bits run to run.
 */
public interface GradientExchange extends AutoCloseable {

    /** Samples [first, first + count) of every micro-batch of a step: inputs[micro] and targets[micro] hold count·T tokens. */
    record Shard(int step, int first, int count, int[][] inputs, int[][] targets) implements Serializable {}

    /** What workers send back, and what the exchange returns summed: the parameter gradients and the loss terms. */
    record Sum(float[] grads, double[] losses) implements Serializable {}

    /** The number of workers, one shard each. */
    int workers();

    /** Runs shard w of shards on worker w with these weights (every parameter, in the model's order) and sums. */
    Sum sum(float[] weights, List<Shard> shards);

    @Override
    default void close() {}
}
