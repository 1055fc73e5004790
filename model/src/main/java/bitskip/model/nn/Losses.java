package bitskip.model.nn;

/**
 * The loss terms of one forward pass (spec Eq. 7), each a mean over the batch's tokens:
 * {@code total = task + lambda_ee·ee + lambda_q·quant + lambda_r·route}. {@code exits[l]} is the
 * cross-entropy of exit l as the early-exit loss computes it (NaN where it was not computed).
 */
public record Losses(double task, double ee, double quant, double route, double total, double[] exits) {}
