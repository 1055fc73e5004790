package bitskip.engine;

/**
 * Work areas of the routing gate's backward pass (overwritten): the gradients of the logit (N), of the ReLU
 * output and input (N, H each) and of the LayerNorm output (N, C).
 */
public record RouterScratch(Tensor dlogit, Tensor dhidden, Tensor dpre, Tensor dln) {}
