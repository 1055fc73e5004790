package bitskip.engine;

/**
 * Work areas of a quantized projection's backward pass, shared by every projection of a model (one runs at
 * a time): {@code dpreact} (N, out) with relu2, {@code dz} (N, padded) and {@code dlnOut} (N, in) for
 * H-BitLinear. Overwritten.
 */
public record LinearScratch(Tensor dpreact, Tensor dz, Tensor dlnOut) {}
