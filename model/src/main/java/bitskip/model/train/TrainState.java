package bitskip.model.train;

/**
 * What a resumed run needs besides the weights and the optimizer's moments: the next step to run and the
 * early-stopping bookkeeping. (The data order, layer-skip and dropout masks are functions of the seed and
 * the step, so there is no random-generator state.)
 */
public record TrainState(int step, double bestValPpl, int bestStep, int evalsWithoutImprovement, boolean stopped) {
    public static TrainState fresh() {
        return new TrainState(0, Double.POSITIVE_INFINITY, -1, 0, false);
    }
}
